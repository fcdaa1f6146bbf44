//! # dtenge-node — a participant node (NBK, STB, Treasury)
//!
//! - [`accounts`]: digital accounts, holders, KYC, key custody;
//! - [`vault`]: the tokens of this node's accounts, reservations, selection, balances;
//! - [`build`]: transaction shapes for every command, with change.
//!
//! Invariant: a token is in at most one transaction in flight (reservation),
//! and leaves the vault only when the notary has committed the transaction
//! that spends it.

pub mod accounts;
pub mod build;
pub mod vault;

use dtenge_types::{Amount, TokenId, TypesError};

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
    /// A value could not be built.
    #[error(transparent)]
    Types(#[from] TypesError),
}
