//! # dtenge-ledger — the kernel
//!
//! Says of any transaction whether it is valid, and if not, which rule it
//! breaks ([`Rejection`]). Every node that handles a transaction runs the same
//! function and gets the same answer.
//!
//! ```text
//!  validate(tx, resolved inputs, context, verifier)
//!     │
//!     ├─ check(): structure → time window → attestation shape → command rules
//!     │           (pure; gathers every signature that must verify)
//!     └─ verify(): one batch verification of transaction + oracle signatures
//! ```
//!
//! Invariants:
//! - knows nothing about storage, networks, async or the clock: `now` is given;
//! - deterministic: the same transaction, inputs and context give the same
//!   answer on every node (Ed25519 under ZIP-215, so batch and single agree);
//! - whether an input is *unspent* is the notary's question, not this crate's:
//!   the caller resolves inputs to tokens it trusts were created by valid,
//!   notarised transactions;
//! - arithmetic on money is checked (`clippy::arithmetic_side_effects` denied).
//!
//! `check` and `verify` are separate so a node can run the rules of many
//! transactions and verify all their signatures in one batch.

#![deny(clippy::arithmetic_side_effects)]

mod common;
mod rejection;
mod rules;

use std::collections::{BTreeMap, BTreeSet};

use dtenge_crypto::{PublicKey, Signature, Verifier, VerifyItem};
use dtenge_types::{Address, Currency, Statement, Timestamp, Token, Transaction, TxId};

pub use rejection::Rejection;

/// Platform parameters every validating node shares.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// Who may issue (and redeem) each currency.
    pub issuers: BTreeMap<Currency, Address>,
    /// Keys whose attestations are accepted.
    pub oracles: BTreeSet<PublicKey>,
    /// DAs of the tax authority, where VAT tokens become standard.
    pub tax_authorities: BTreeSet<Address>,
    /// Longest allowed time window.
    pub max_window_ms: u64,
    /// Participant nodes' EDS keys: the host bank signs collections and key
    /// rotations of the DAs it hosts (tokens name their host).
    #[serde(default)]
    pub hosts: BTreeMap<dtenge_types::ParticipantId, PublicKey>,
    /// Authorised bodies whose signed orders may freeze, arrest and collect.
    #[serde(default)]
    pub authorities: BTreeSet<PublicKey>,
    /// DT-backed stablecoins and their licensed issuers' DAs (SPEC §9): only
    /// that DA mints and burns the stablecoin, each time against its reserve.
    #[serde(default)]
    pub stablecoins: BTreeMap<Currency, Address>,
}

impl Params {
    /// Default longest time window: one day.
    pub const DEFAULT_MAX_WINDOW_MS: u64 = Timestamp::DAY_MS;
}

/// What validation is given besides the transaction.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The validating node's clock reading.
    pub now: Timestamp,
    /// Platform parameters.
    pub params: &'a Params,
}

/// Who must sign or attest, found by [`check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerRole {
    /// A transaction signature.
    Transaction,
    /// An oracle attestation.
    Oracle,
}

/// One signature to verify.
#[derive(Debug, Clone)]
pub struct SignatureCheck {
    /// The key.
    pub public_key: PublicKey,
    /// The signed bytes.
    pub message: Vec<u8>,
    /// The signature.
    pub signature: Signature,
    /// What it is.
    pub role: SignerRole,
}

impl SignatureCheck {
    /// As an item for batch verification.
    pub fn item(&self) -> VerifyItem<'_> {
        VerifyItem { public_key: &self.public_key, message: &self.message, signature: &self.signature }
    }

    /// The rejection if this signature fails.
    pub fn rejection(&self) -> Rejection {
        match self.role {
            SignerRole::Transaction => Rejection::BadSignature { signer: self.public_key },
            SignerRole::Oracle => Rejection::BadAttestation { oracle: self.public_key },
        }
    }
}

/// A transaction whose rules hold; its signatures are still to verify.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The transaction id.
    pub id: TxId,
    /// Every signature that must verify.
    pub signatures: Vec<SignatureCheck>,
}

/// Validates `tx` whose inputs resolve to `inputs` (same order), verifying
/// signatures with `verifier`. Returns the transaction id.
pub fn validate(
    tx: &Transaction,
    inputs: &[Token],
    ctx: &Context<'_>,
    verifier: &dyn Verifier,
) -> Result<TxId, Rejection> {
    let checked = check(tx, inputs, ctx)?;
    verify(&checked, verifier)?;
    Ok(checked.id)
}

/// Every rule except signature verification.
pub fn check(tx: &Transaction, inputs: &[Token], ctx: &Context<'_>) -> Result<Checked, Rejection> {
    rules::check(tx, inputs, ctx)
}

/// Verifies the signatures gathered by [`check`], in one batch.
pub fn verify(checked: &Checked, verifier: &dyn Verifier) -> Result<(), Rejection> {
    let items: Vec<VerifyItem<'_>> = checked.signatures.iter().map(SignatureCheck::item).collect();
    verifier.verify_batch(&items).map_err(|failure| {
        failure
            .failed
            .first()
            .and_then(|i| checked.signatures.get(*i))
            .map(SignatureCheck::rejection)
            .unwrap_or(Rejection::BadSignature { signer: PublicKey([0; 32]) })
    })
}

/// Verifies the signatures gathered by [`check`] for several transactions
/// in one batch; returns each transaction's verdict, the same one
/// [`verify`] gives it alone.
pub fn verify_each(checked: &[&Checked], verifier: &dyn Verifier) -> Vec<Result<(), Rejection>> {
    let failed = match verifier.verify_batch(&signature_items(checked)) {
        Ok(()) => Vec::new(),
        Err(failure) => failure.failed,
    };
    verdicts(checked, &failed)
}

/// The signatures gathered by [`check`] for several transactions, in
/// order, as items of one batch verification (which may hold others after
/// them: [`verdicts`] looks only at these).
pub fn signature_items<'a>(checked: &[&'a Checked]) -> Vec<VerifyItem<'a>> {
    checked.iter().flat_map(|c| c.signatures.iter().map(SignatureCheck::item)).collect()
}

/// Each transaction's verdict from a batch verification of
/// [`signature_items`] that failed at the items `failed` (their indices in
/// that list; larger ones belong to items after them and are ignored).
pub fn verdicts(checked: &[&Checked], failed: &[usize]) -> Vec<Result<(), Rejection>> {
    let mut start: usize = 0;
    checked
        .iter()
        .map(|c| {
            let end = start.saturating_add(c.signatures.len());
            let first = failed.iter().filter(|i| (start..end).contains(*i)).min().map(|i| i.saturating_sub(start));
            start = end;
            match first.and_then(|i| c.signatures.get(i)) {
                Some(bad) => Err(bad.rejection()),
                None => Ok(()),
            }
        })
        .collect()
}

/// The statement an attestation on `tx` must make, if its command needs one.
pub fn expected_statement(command: &dtenge_types::Command) -> Option<&'static str> {
    rules::expected_statement(command)
}

/// Re-exported so callers can name statements without importing the types crate.
pub type AttestedStatement = Statement;
