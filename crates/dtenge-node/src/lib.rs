//! # dtenge-node — a participant node (NBK, STB, Treasury)
//!
//! - [`accounts`]: digital accounts, holders, KYC, key custody;
//! - [`vault`]: the tokens of this node's accounts, reservations, selection, balances;
//! - [`build`]: transaction shapes for every command, with change;
//! - [`guard`]: the payer's guard, whose clearance the vault hands tokens out against;
//! - [`lease`]: payee banks' promises that a DA takes payments for a while, sparing the pre-check;
//! - [`cards`]: bank cards linked to a DA, card payments, the card network's messages and its simulator;
//! - [`conversion`]: STB–NBK conversion through the CBS file exchange;
//! - [`regime`]: KYC tiers and NBK's limits, linked bank accounts (waterfall),
//!   enforcement orders, key rotation records;
//! - [`state`]: the node's journaled state machine: accounts, vault, in-flight
//!   transactions, history, notifications, lineage;
//! - [`status`]: where a request or transaction stands;
//! - [`service`]: the running node — operations, the one outgoing pipeline,
//!   incoming deliveries, the background tick.
//!
//! Invariant: a token is in at most one transaction in flight (reservation),
//! and leaves the vault only when the notary has committed the transaction
//! that spends it.

pub mod accounts;
pub mod archive;
pub mod batcher;
pub mod build;
pub mod cards;
pub mod conversion;
pub mod directory;
pub mod guard;
pub mod lease;
pub mod metrics;
pub mod notification;
pub mod refusal;
pub mod regime;
pub mod service;
pub mod state;
pub mod status;
pub mod vault;
pub mod witness;

use dtenge_types::{Amount, ParticipantId, TokenId, TypesError};

pub use refusal::{Refusal, RefusalCode};

/// What a node refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// Not enough unreserved funds of the needed kind.
    #[error("insufficient funds: {requested} requested, {available} available")]
    InsufficientFunds {
        /// Asked for.
        requested: Amount,
        /// Available of the needed kind.
        available: Amount,
    },
    /// Enough funds, but part is being spent by payments in flight.
    #[error(
        "{requested} requested, only {available} free now: the rest is being spent by payments in flight; retry when they settle"
    )]
    FundsInFlight {
        /// Asked for.
        requested: Amount,
        /// Free now.
        available: Amount,
    },
    /// Funds exist but in more tokens than one transaction may consume.
    #[error(
        "funds are split over too many tokens: only {reachable} of {needed} fits in one transaction; merge tokens first"
    )]
    TooFragmented {
        /// Asked for.
        needed: Amount,
        /// What fits.
        reachable: Amount,
    },
    /// A token id not in the vault.
    #[error("token {0} is not in this node's vault")]
    UnknownToken(TokenId),
    /// A token another transaction in flight is consuming.
    #[error("token {0} is being spent by another transaction in flight")]
    TokenBusy(TokenId),
    /// Nothing of the right kind to spend.
    #[error("no tokens of the required kind to spend")]
    NothingToSpend,
    /// A marking level's remaining limit is too low.
    #[error("marking level {level} allows {available} more, {requested} requested")]
    MarkingLimit {
        /// The level.
        level: usize,
        /// Asked for.
        requested: Amount,
        /// Left.
        available: Amount,
    },
    /// Too many payees for one transaction.
    #[error("too many outputs for one transaction: {0}")]
    TooManyOutputs(String),
    /// A sum overflowed.
    #[error("amounts overflow")]
    Overflow,
    /// An issue would take the outstanding supply past the largest amount
    /// the ledger represents.
    #[error(
        "issuing {amount} {currency} would take the outstanding supply of {outstanding} {currency} past the largest representable amount ({max}); redeem first",
        max = dtenge_types::Amount::MAX
    )]
    SupplyOverflow {
        /// The currency.
        currency: String,
        /// Issued and not redeemed, issues in flight included.
        outstanding: Amount,
        /// The issue refused.
        amount: Amount,
    },
    /// A payment would take its DA's total paid out today past the largest
    /// amount the ledger represents.
    #[error(
        "digital account {account} has paid out so much today that this payment would take the day's total past the largest representable amount; pay it tomorrow"
    )]
    DailyTotalOverflow {
        /// The DA.
        account: String,
    },
    /// A value could not be built.
    #[error(transparent)]
    Types(#[from] TypesError),
    /// No such DA on this node.
    #[error("no digital account {0} on this node")]
    UnknownAccount(String),
    /// The DA is closed.
    #[error("digital account {0} is closed")]
    AccountClosed(String),
    /// The DA's holder is not identified yet.
    #[error("digital account {0} cannot pay until its KYC is verified")]
    KycNotVerified(String),
    /// The client holds the key.
    #[error("digital account {0} holds its own key: the client must sign the transaction")]
    ClientSigns(String),
    /// The directory gives the address to another node (or to none): this
    /// node credits only addresses registered to it.
    #[error("address {0} is not registered to this node: tokens for it are credited only where the directory says")]
    NotHostedHere(String),
    /// The directory gives the address to another node's DA: an address
    /// belongs to one DA platform-wide.
    #[error("address {address} is already registered at {host}")]
    AddressTaken {
        /// The address.
        address: dtenge_types::Address,
        /// The node whose DA has it.
        host: ParticipantId,
    },
    /// The recipient address is not registered anywhere.
    #[error("no digital account with address {0} is registered on the platform")]
    UnknownRecipient(String),
    /// A request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// A delivered transaction's notary receipt does not verify or is for
    /// another transaction.
    #[error("receipt: {0}")]
    BadReceipt(String),
    /// The kernel refused the transaction.
    #[error("transaction invalid (rule {code}): {0}", code = .0.code())]
    Rejected(#[from] dtenge_ledger::Rejection),
    /// The notary refused it.
    #[error("notary refused the transaction: {0}")]
    NotaryRejected(dtenge_notary::NotaryRejection),
    /// The oracle refused it.
    #[error("oracle: {0}")]
    Oracle(dtenge_oracle::OracleRefusal),
    /// A service is unreachable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(String),
    /// A bounded queue of the node is full (backpressure): retry shortly.
    #[error("busy, retry shortly: {0}")]
    Busy(String),
    /// A KYC-tier limit would be broken.
    #[error(
        "{tier} tier {limit} of {limit_amount} would be exceeded: {detail}",
        tier = .tier.name(), limit = .limit.name()
    )]
    LimitExceeded {
        /// The DA's tier.
        tier: crate::regime::Tier,
        /// Which limit.
        limit: crate::regime::LimitKind,
        /// The limit.
        limit_amount: Amount,
        /// The amounts involved, for people.
        detail: String,
    },
    /// An enforcement order forbids it (frozen, arrested).
    #[error("{0}")]
    Enforcement(String),
    /// The DA still holds money.
    #[error(
        "digital account {account} still holds {balance} DT: convert it out to the linked bank account first (close with convert_out) or pay it out"
    )]
    BalanceNotZero {
        /// The DA.
        account: String,
        /// What it holds.
        balance: Amount,
    },
    /// The payee's bank refused the incoming payment (closed DA, revoked key, balance cap).
    #[error("the recipient's bank {bank} refused: {reason}")]
    PayeeRefused {
        /// The payee's bank.
        bank: ParticipantId,
        /// Its refusal.
        reason: Refusal,
    },
    /// Another node refused a request this operation needed (NBK a
    /// conversion, a counterparty's bank its PvP leg); the code is that
    /// node's.
    #[error("{node} refused: {refusal}")]
    RefusedBy {
        /// The node that refused.
        node: ParticipantId,
        /// Its refusal.
        refusal: Refusal,
    },
    /// Only the body that placed an order may lift it, and only with a valid signature.
    #[error("{0}")]
    Forbidden(String),
}
