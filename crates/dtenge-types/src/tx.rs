//! Transactions, their commands, oracle attestations and signatures (SPEC §3).
//!
//! ```text
//! Transaction ── body ──────────── inputs (token ids) ── hashed into the TxId
//!             │                  ├ outputs (tokens)
//!             │                  ├ command + its references
//!             │                  ├ time window
//!             │                  └ memo
//!             ├─ attestations ──── oracle signatures over (TxId, statement)
//!             └─ signatures ────── EDS signatures over the TxId
//! ```
//!
//! The id covers the body only, so attestations and signatures can be added
//! after the body is fixed, and each of them names the one transaction it is
//! for: none can be replayed into another.
//!
//! The order of enum variants is their number on the wire: new variants are
//! only ever appended.

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::{Hasher, PublicKey, Signature, Signer};
use serde::{Deserialize, Serialize};

use crate::bounded::BoundedVec;
use crate::encoding::HashWriter;
use crate::ids::{
    Address, CbsRef, ContractNo, Currency, EventId, InvoiceId, MandateId, Memo, OrderRef, ParameterId, TimeWindow,
    Timestamp, TokenId, TxId,
};
use crate::token::{HoldKind, Token};
use crate::{Amount, MAX_ATTESTATIONS, MAX_INPUTS, MAX_OUTPUTS, MAX_SIGNATURES, TypesError};

/// What a transaction does. Each command has its own validation rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// NBK creates DT after the CBS confirms the bank's tenge were debited.
    Issue {
        /// The CBS confirmation.
        cbs_reference: CbsRef,
    },
    /// The issuer destroys DT it holds after the CBS confirms the bank's tenge were credited.
    Redeem {
        /// The CBS confirmation.
        cbs_reference: CbsRef,
    },
    /// Move standard or address-marked tokens to one or several recipients.
    Transfer,
    /// Mark standard funds by public address (§4.2.1).
    MarkAddress,
    /// Mark standard funds with a parameter registered on the oracle (§4.2.2).
    MarkParameter {
        /// The parameter.
        parameter: ParameterId,
    },
    /// Move parameter-marked funds under a contract (§4.2.2).
    ContractPayment {
        /// The parameter.
        parameter: ParameterId,
        /// The contract.
        contract: ContractNo,
    },
    /// Hold standard funds for an oracle event (§4.1).
    Hold {
        /// The event.
        event: EventId,
    },
    /// Release held funds to the recipient on the oracle's word (§4.1).
    Release {
        /// The event.
        event: EventId,
    },
    /// Return held funds to their owner after valid-until; needs no oracle (§4.1).
    Expire {
        /// The event.
        event: EventId,
    },
    /// Return held funds to their owner when the provider cancels the event (§4.1).
    CancelHold {
        /// The event.
        event: EventId,
    },
    /// Pay an e-invoice: net amount standard, VAT amount VAT-marked (§4.2.3).
    PayInvoice {
        /// The e-invoice.
        invoice: InvoiceId,
    },
    /// Pay VAT tokens to the tax authority, where they become standard (§4.2.3).
    PayVat,
    /// Reserve funds for debits by a grantee (§4.4).
    GrantMandate {
        /// The mandate.
        mandate: MandateId,
    },
    /// The grantee debits reserved funds (§4.4).
    Debit {
        /// The mandate.
        mandate: MandateId,
    },
    /// The owner takes reserved funds back.
    RevokeMandate {
        /// The mandate.
        mandate: MandateId,
    },
    /// Payment versus payment across two currencies at an attested rate (§9).
    Pvp,
    /// A collection order executed against a DA (a court-ordered debit): the
    /// DA's host bank signs, carrying the authority's signed order; the
    /// owner's signature is not needed.
    Collect {
        /// The authority's signed order (its act is `Collect`).
        order: SignedOrder,
    },
    /// Key rotation after re-identification: the DA's host bank moves every
    /// token of the old key to the new key, unchanged otherwise.
    Rekey {
        /// The lost or compromised key.
        old: Address,
        /// The key that owns the tokens from now on.
        new: Address,
    },
    /// A licensed issuer mints its stablecoin: the same transaction moves
    /// the same amount of its standard DT into the stablecoin's reserve (§9).
    Mint {
        /// The stablecoin minted.
        stablecoin: Currency,
    },
    /// A licensed issuer burns its stablecoin: the same transaction releases
    /// the same amount of DT from the stablecoin's reserve to the issuer.
    Burn {
        /// The stablecoin burned.
        stablecoin: Currency,
    },
}

impl Command {
    /// A short stable name, used in logs, history and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Issue { .. } => "issue",
            Command::Redeem { .. } => "redeem",
            Command::Transfer => "transfer",
            Command::MarkAddress => "mark_address",
            Command::MarkParameter { .. } => "mark_parameter",
            Command::ContractPayment { .. } => "contract_payment",
            Command::Hold { .. } => "hold",
            Command::Release { .. } => "release",
            Command::Expire { .. } => "expire",
            Command::CancelHold { .. } => "cancel_hold",
            Command::PayInvoice { .. } => "pay_invoice",
            Command::PayVat => "pay_vat",
            Command::GrantMandate { .. } => "grant_mandate",
            Command::Debit { .. } => "debit",
            Command::RevokeMandate { .. } => "revoke_mandate",
            Command::Pvp => "pvp",
            Command::Collect { .. } => "collect",
            Command::Rekey { .. } => "rekey",
            Command::Mint { .. } => "mint",
            Command::Burn { .. } => "burn",
        }
    }
}

/// The signed part of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TxBody {
    /// Tokens consumed, whole.
    pub inputs: BoundedVec<TokenId, MAX_INPUTS>,
    /// Tokens created; output `i` gets id `(tx id, i)`.
    pub outputs: BoundedVec<Token, MAX_OUTPUTS>,
    /// What the transaction does.
    pub command: Command,
    /// When it may commit.
    pub window: TimeWindow,
    /// Purpose text; also makes otherwise identical bodies distinct.
    pub memo: Option<Memo>,
}

impl TxBody {
    /// The transaction id: SHA-256 of the canonical body encoding.
    pub fn id(&self) -> TxId {
        let mut hasher = Hasher::new(b"dtenge/tx/v1");
        // Writing into a hasher cannot fail.
        let _ = BorshSerialize::serialize(self, &mut HashWriter(&mut hasher));
        TxId(hasher.finish())
    }

    /// The id output `index` gets.
    pub fn output_id(id: TxId, index: usize) -> TokenId {
        TokenId { tx: id, index: u16::try_from(index).unwrap_or(u16::MAX) }
    }
}

/// An EDS signature over a transaction id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TxSignature {
    /// The signing key.
    pub signer: PublicKey,
    /// Its signature over [`TxId::signing_message`].
    pub signature: Signature,
}

impl TxId {
    /// The bytes a signer signs: a domain tag and the id.
    pub fn signing_message(&self) -> [u8; 44] {
        let mut msg = [0u8; 44];
        msg[..12].copy_from_slice(b"dtenge/txsig");
        msg[12..].copy_from_slice(self.0.as_bytes());
        msg
    }
}

/// What an oracle attests about a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Statement {
    /// The event is registered with these terms and this hold may be made.
    HoldConfirmed {
        /// The event.
        event: EventId,
        /// Whose funds are held.
        sender: Address,
        /// Who receives them on release.
        recipient: Address,
        /// How much is held.
        amount: Amount,
        /// When the hold ends.
        valid_until: Timestamp,
        /// Single or recurring.
        kind: HoldKind,
    },
    /// The event occurred: release this amount.
    EventOccurred {
        /// The event.
        event: EventId,
        /// The amount to release.
        amount: Amount,
    },
    /// The provider cancelled the event: held funds return.
    EventCancelled {
        /// The event.
        event: EventId,
    },
    /// The parameter is registered and this initiator may mark with it.
    ParameterRegistered {
        /// The parameter.
        parameter: ParameterId,
        /// Who marks.
        initiator: Address,
    },
    /// A payment under a contract is within its maxima.
    ContractPayment {
        /// The parameter.
        parameter: ParameterId,
        /// The contract.
        contract: ContractNo,
        /// The paying DA.
        sender: Address,
        /// The receiving DA.
        recipient: Address,
        /// The amount.
        amount: Amount,
        /// Whether the recipient receives standard tokens (end supplier or cash-out).
        unmark: bool,
    },
    /// The e-invoice as registered by the tax service.
    Invoice {
        /// The invoice.
        invoice: InvoiceId,
        /// Who is paid.
        seller: Address,
        /// Who pays.
        buyer: Address,
        /// Amount without VAT.
        net: Amount,
        /// VAT amount.
        vat: Amount,
    },
    /// An exchange rate: `quote = floor(base × numerator / denominator)`.
    FxRate {
        /// Currency given.
        base: Currency,
        /// Currency received.
        quote: Currency,
        /// Rate numerator.
        numerator: u64,
        /// Rate denominator, positive.
        denominator: u64,
    },
}

impl Statement {
    /// A short stable name.
    pub fn name(&self) -> &'static str {
        match self {
            Statement::HoldConfirmed { .. } => "hold_confirmed",
            Statement::EventOccurred { .. } => "event_occurred",
            Statement::EventCancelled { .. } => "event_cancelled",
            Statement::ParameterRegistered { .. } => "parameter_registered",
            Statement::ContractPayment { .. } => "contract_payment",
            Statement::Invoice { .. } => "invoice",
            Statement::FxRate { .. } => "fx_rate",
        }
    }

    /// The bytes the oracle signs for `tx`.
    pub fn signing_message(&self, tx: &TxId) -> [u8; 32] {
        let mut hasher = Hasher::new(b"dtenge/attestation/v1");
        hasher.update(tx.0.as_bytes());
        let _ = BorshSerialize::serialize(self, &mut HashWriter(&mut hasher));
        *hasher.finish().as_bytes()
    }
}

/// An oracle's signed statement about one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Attestation {
    /// The oracle key.
    pub oracle: PublicKey,
    /// What it attests.
    pub statement: Statement,
    /// Signature over [`Statement::signing_message`].
    pub signature: Signature,
}

/// A complete transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Transaction {
    /// The body; its hash is the id.
    pub body: TxBody,
    /// Oracle attestations.
    pub attestations: BoundedVec<Attestation, MAX_ATTESTATIONS>,
    /// EDS signatures.
    pub signatures: BoundedVec<TxSignature, MAX_SIGNATURES>,
}

impl Transaction {
    /// A transaction with no attestations or signatures yet.
    pub fn unsigned(body: TxBody) -> Transaction {
        Transaction { body, attestations: BoundedVec::empty(), signatures: BoundedVec::empty() }
    }

    /// The id.
    pub fn id(&self) -> TxId {
        self.body.id()
    }

    /// Adds `signer`'s signature over the id.
    pub fn sign(&mut self, signer: &dyn Signer) -> Result<(), TypesError> {
        let id = self.id();
        self.signatures
            .try_push(TxSignature { signer: signer.public_key(), signature: signer.sign(&id.signing_message()) })
    }

    /// Adds an oracle's attestation of `statement` for this transaction.
    pub fn attest(&mut self, oracle: &dyn Signer, statement: Statement) -> Result<(), TypesError> {
        let id = self.id();
        let signature = oracle.sign(&statement.signing_message(&id));
        self.attestations.try_push(Attestation { oracle: oracle.public_key(), statement, signature })
    }

    /// Ids of the outputs, in order.
    pub fn output_ids(&self) -> impl Iterator<Item = TokenId> + '_ {
        let id = self.id();
        (0..self.body.outputs.len()).map(move |i| TxBody::output_id(id, i))
    }
}

/// What an enforcement order does to a digital account (Kazakhstan's law on
/// digital accounts: debits on third-party demands such as court orders).
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrderAct {
    /// Nothing may leave the DA.
    Freeze,
    /// This much may not be spent; the rest may.
    Arrest {
        /// The arrested amount.
        amount: Amount,
    },
    /// Debit the DA to a named beneficiary.
    Collect {
        /// At most this much.
        amount: Amount,
        /// Who receives it.
        beneficiary: Address,
    },
    /// Lift an earlier freeze or arrest of the same authority.
    Lift {
        /// The order lifted.
        order: OrderRef,
    },
}

impl OrderAct {
    /// A short stable name.
    pub fn name(&self) -> &'static str {
        match self {
            OrderAct::Freeze => "freeze",
            OrderAct::Arrest { .. } => "arrest",
            OrderAct::Collect { .. } => "collect",
            OrderAct::Lift { .. } => "lift",
        }
    }
}

/// An order of an authorised body (court bailiffs, the tax authority) against one DA.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct EnforcementOrder {
    /// The authority's reference, unique per authority.
    pub reference: OrderRef,
    /// The authority's EDS key (listed in the ledger parameters).
    pub authority: PublicKey,
    /// The DA the order is against.
    pub debtor: Address,
    /// What it does.
    pub act: OrderAct,
    /// The legal reason (act, article, case).
    pub reason: Memo,
    /// When the authority issued it.
    pub issued_at: Timestamp,
}

impl EnforcementOrder {
    /// The bytes the authority signs.
    pub fn signing_message(&self) -> [u8; 32] {
        let mut hasher = Hasher::new(b"dtenge/order/v1");
        let _ = BorshSerialize::serialize(self, &mut HashWriter(&mut hasher));
        *hasher.finish().as_bytes()
    }

    /// The order signed by `authority` (whose key should be `self.authority`).
    pub fn sign(self, authority: &dyn Signer) -> SignedOrder {
        let signature = authority.sign(&self.signing_message());
        SignedOrder { order: self, signature }
    }
}

/// An enforcement order with the authority's signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedOrder {
    /// The order.
    pub order: EnforcementOrder,
    /// The authority's signature over [`EnforcementOrder::signing_message`].
    pub signature: Signature,
}
