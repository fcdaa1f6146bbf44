//! Offline device-to-device payments of DT, designed after the BIS
//! Innovation Hub's Project Polaris handbook for offline CBDC payments
//! (docs/offline.md). Pure: no storage, network or clock — `now` is given.
//!
//! ```text
//!  online                         offline                         online
//!  DA ──fund──► bank's offline    device A ──chain──► device B    B's bank ──deposit──► paying
//!  reserve (a normal payment)     (signed hops, ≤ 1 KiB,          (chain + B's deposit   bank's book:
//!  bank signs a Load + device     verified by B alone:            hop to its DA)         settle once from
//!  Certificate (limits)           bank keys, certificates,                               the reserve, or a
//!                                 counters, ranges)                                      double-spend Proof
//! ```
//!
//! Offline value is a range `[lo, hi)` of tiyn of one bank-signed [`Load`].
//! Each hop of a [`Chain`] is signed by the holder's secure element and
//! passes a sub-range on; an honest element never signs two overlapping
//! ranges of one holding, so two deposited chains whose ranges overlap
//! diverge at one hop signed twice by one device — the [`Proof`].
//!
//! Invariants: a chain decodes bounded and canonical ([`decode_chain`]);
//! every range nests in its parent's (value is never created offline); a
//! [`DepositBook`] settles each tiyn of a load at most once.

#![deny(clippy::arithmetic_side_effects)]

mod book;
mod element;
mod error;
mod message;
mod purse;
mod verify;

pub use book::{Conflict, Decision, DepositBook, DepositOutcome, MAX_DEPOSITS_PER_LOAD, Proof};
pub use element::{Counted, ElementError, SecureElement, SoftwareElement};
pub use error::{OfflineCode, OfflineError};
pub use message::{
    Certificate, Chain, Hop, Limits, Load, MAX_CHAIN_BYTES, MAX_CHAIN_HOPS, MAX_PAYMENT_BYTES, MAX_PAYMENT_HOPS,
    MAX_REVOKED, RevocationList, decode_chain, decode_revocations, encode_payment,
};
pub use purse::{MAX_HOLDINGS, Purse};
pub use verify::{Entitlement, Purpose, TIME_SKEW_MS, Trust, verify_chain};
