//! # dtenge-types
//!
//! The data of the Digital Tenge ledger: amounts in tiyn, identifiers (IIN/BIN,
//! participants, currencies, DA addresses), tokens with their markings and
//! encumbrances, transactions with their commands, oracle attestations and EDS
//! signatures, and the canonical encoding every hash is taken over.
//!
//! Invariants:
//! - no I/O, no clock, no randomness: everything here is a pure function of its input;
//! - every value decoded from outside has bounded size ([`bounded`], [`encoding`]);
//! - identifiers are validated when constructed and when decoded, so a value of
//!   these types is always well-formed;
//! - money is [`Amount`], a `u64` of tiyn with checked arithmetic only.

pub mod amount;
pub mod bounded;
pub mod encoding;
pub mod ids;
pub mod iin;
pub mod token;
pub mod tx;

pub use amount::Amount;
pub use bounded::BoundedVec;
pub use ids::{
    Address, CbsRef, ContractNo, Currency, EventId, InvoiceId, MandateId, MarkingRef, Memo, OrderRef, ParameterId,
    ParticipantId, TimeWindow, Timestamp, TokenId, TxId,
};
pub use iin::{IinBin, IinBinKind};
pub use token::{
    AddressMarking, Commitment, Encumbrance, Hold, HoldKind, MandateTerms, Marking, MarkingLevel, MarkingRule,
    ParameterMarking, ReserveTerms, Token, TokenKind,
};
pub use tx::{
    Attestation, Command, EnforcementOrder, OrderAct, SignedOrder, Statement, Transaction, TxBody, TxSignature,
};

/// Most inputs a transaction may consume.
pub const MAX_INPUTS: usize = 64;
/// Most outputs a transaction may create.
pub const MAX_OUTPUTS: usize = 64;
/// Most oracle attestations on one transaction.
pub const MAX_ATTESTATIONS: usize = 4;
/// Most signatures on one transaction (every input owner plus authorities).
pub const MAX_SIGNATURES: usize = 16;
/// Deepest address marking.
pub const MAX_MARKING_DEPTH: usize = 8;
/// Most allowed recipients at one marking level.
pub const MAX_RECIPIENTS_PER_LEVEL: usize = 32;
/// Largest encoded transaction accepted from outside. A transaction at every
/// bound above stays under it (checked by a test).
pub const MAX_TX_BYTES: usize = 640 * 1024;

const _: () = assert!(MAX_INPUTS <= u16::MAX as usize && MAX_OUTPUTS <= u16::MAX as usize);
const _: () = assert!(MAX_MARKING_DEPTH <= u8::MAX as usize);

/// Why a value could not be built or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypesError {
    /// An amount's text form is not acceptable.
    #[error("invalid amount {input:?}: {reason}")]
    Amount {
        /// What was given (cut to 40 characters).
        input: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An IIN/BIN is not acceptable.
    #[error("invalid IIN/BIN {input:?}: {reason}")]
    IinBin {
        /// What was given.
        input: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A text identifier is not acceptable.
    #[error("invalid {what}: {reason}")]
    Text {
        /// Which identifier.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A list is longer than its bound.
    #[error("too many items of {what}: at most {max}, got {actual}")]
    TooMany {
        /// The item type.
        what: &'static str,
        /// The bound.
        max: usize,
        /// The length given.
        actual: usize,
    },
    /// Bytes do not decode to a value.
    #[error("cannot decode: {0}")]
    Decode(String),
}

/// Decodes a transaction received from outside.
pub fn decode_transaction(bytes: &[u8]) -> Result<Transaction, TypesError> {
    encoding::decode(bytes, MAX_TX_BYTES)
}
