//! Why a transaction is invalid: one variant per rule, each with a stable
//! number on the wire ([`Rejection::code`]) that is never reused, and a message
//! that names the rule and the offending input or output.
//!
//! Codes are grouped by hundreds: 1xx structure, 2xx time, 3xx signatures,
//! 4xx value, 5xx inputs, 6xx attestations, 7xx issue/redeem, 8xx marking by
//! address, 9xx marking by parameter, 10xx holds, 11xx VAT, 12xx mandates,
//! 13xx PvP, 14xx enforcement orders and key rotation, 15xx stablecoins.

use dtenge_crypto::PublicKey;
use dtenge_types::{Amount, Currency, Timestamp};
use serde::Serialize;

/// A transaction rejected by the kernel. Input and output numbers are
/// 0-based positions in the transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rejection {
    // 1xx structure
    /// The command consumes tokens but none are given.
    #[error("{command} needs at least one input")]
    NoInputs { command: &'static str },
    /// Issue creates money from nothing, so it takes no inputs.
    #[error("issue must not consume inputs")]
    IssueWithInputs,
    /// Nothing is created.
    #[error("{command} needs at least one output")]
    NoOutputs { command: &'static str },
    /// The same token is consumed twice.
    #[error("input {input} repeats an earlier input")]
    DuplicateInput { input: usize },
    /// The caller gave a different number of resolved tokens than inputs.
    #[error("{resolved} input tokens were resolved for {expected} inputs")]
    InputsNotResolved { expected: usize, resolved: usize },
    /// Tokens are positive.
    #[error("output {output} has a zero amount")]
    ZeroAmount { output: usize },
    /// An output owner must be a usable Ed25519 key.
    #[error("output {output} is owned by an invalid or weak public key")]
    InvalidOwnerKey { output: usize },

    // 2xx time
    /// `not_before` is after `not_after`.
    #[error("time window ends before it starts")]
    WindowMalformed,
    /// The window is longer than the platform allows.
    #[error("time window of {length_ms} ms is longer than the maximum {max_ms} ms")]
    WindowTooLong { length_ms: u64, max_ms: u64 },
    /// Too early.
    #[error("transaction is not valid before {not_before:?} (now {now:?})")]
    NotYetValid { not_before: Timestamp, now: Timestamp },
    /// Too late.
    #[error("transaction expired at {not_after:?} (now {now:?})")]
    WindowExpired { not_after: Timestamp, now: Timestamp },

    // 3xx signatures
    /// A required signer has not signed.
    #[error("missing signature of {signer}")]
    MissingSignature { signer: PublicKey },
    /// Someone signed who has no part in this transaction.
    #[error("unexpected signature of {signer}")]
    UnexpectedSignature { signer: PublicKey },
    /// The same key signed twice.
    #[error("{signer} signed twice")]
    DuplicateSignature { signer: PublicKey },
    /// A signature does not verify.
    #[error("signature of {signer} does not verify")]
    BadSignature { signer: PublicKey },

    // 4xx value
    /// Inputs and outputs differ for a currency.
    #[error("value not conserved in {currency}: inputs {inputs}, outputs {outputs}")]
    ValueNotConserved { currency: Currency, inputs: Amount, outputs: Amount },
    /// A sum does not fit in 64 bits of tiyn.
    #[error("amounts overflow")]
    Overflow,
    /// The command works on one currency only.
    #[error("{command} must use a single currency")]
    MixedCurrencies { command: &'static str },

    // 5xx inputs
    /// A held or mandated token used by a command that does not release it.
    #[error("input {input} is encumbered ({encumbrance}) and cannot be spent by {command}")]
    EncumberedInput { input: usize, encumbrance: &'static str, command: &'static str },
    /// A marked token used by a command that does not honour its marking.
    #[error("input {input} is {marking}-marked and cannot be spent by {command}; {hint}")]
    MarkedInput { input: usize, marking: &'static str, command: &'static str, hint: &'static str },
    /// The command needs all inputs from one owner.
    #[error("input {input} has a different owner from input 0")]
    MixedOwners { input: usize },
    /// The command needs encumbered inputs.
    #[error("input {input} is not {expected}")]
    WrongInputKind { input: usize, expected: &'static str },
    /// Inputs carry different rules and cannot be combined.
    #[error("input {input} carries different {what} from input 0")]
    MixedTerms { input: usize, what: &'static str },

    // 6xx attestations
    /// The command needs an oracle attestation.
    #[error("{command} needs an oracle attestation ({expected})")]
    MissingAttestation { command: &'static str, expected: &'static str },
    /// An attestation the command does not use, or a second one.
    #[error("unexpected attestation {statement}")]
    UnexpectedAttestation { statement: &'static str },
    /// The attesting key is not a platform oracle.
    #[error("attestation signed by {oracle}, which is not a platform oracle")]
    UnknownOracle { oracle: PublicKey },
    /// The attestation's signature does not verify.
    #[error("attestation by {oracle} does not verify (forged or for another transaction)")]
    BadAttestation { oracle: PublicKey },
    /// The attestation says something other than the transaction does.
    #[error("attestation does not match the transaction: {field}")]
    AttestationMismatch { field: &'static str },

    // 7xx issue / redeem
    /// No issuer is known for the currency.
    #[error("no issuer is registered for currency {currency}")]
    UnknownCurrency { currency: Currency },
    /// Issued or redeemed tokens carry rules.
    #[error("output {output} of {command} must be a standard token")]
    OutputNotStandard { output: usize, command: &'static str },
    /// Only the issuer's own tokens are redeemed.
    #[error("input {input} is not held by the issuer of its currency")]
    RedeemNotIssuerHeld { input: usize },
    /// Redeem destroys something.
    #[error("redeem destroys nothing")]
    NothingRedeemed,
    /// Change goes back to the owner.
    #[error("output {output} must return to the owner of the inputs")]
    ChangeNotToOwner { output: usize },

    // 8xx marking by address
    /// The marking rule itself is malformed.
    #[error("marking rule invalid: {reason}")]
    MarkingRuleInvalid { reason: &'static str },
    /// Marked funds to someone not allowed at the next level.
    #[error("output {output}: recipient is not allowed at marking level {level}")]
    RecipientNotAllowed { output: usize, level: usize },
    /// More than the level's remaining limit.
    #[error("marking level {level} limit exceeded: {requested} requested, {available} left")]
    MarkingLimitExceeded { level: usize, requested: Amount, available: Amount },
    /// Outputs carry more allowance than allowed (transfer), or other than the limits (marking).
    #[error("allowance for marking level {level}: {inputs} allowed, outputs carry {outputs}")]
    AllowanceNotConserved { level: usize, inputs: Amount, outputs: Amount },
    /// An output's marking does not follow from the inputs.
    #[error("output {output} carries the wrong marking: {reason}")]
    WrongOutputMarking { output: usize, reason: &'static str },

    // 9xx marking by parameter
    /// Under a contract, funds go to the contract's recipient or back as change.
    #[error("output {output} goes neither to the contract recipient nor back to the sender")]
    ContractRecipientMismatch { output: usize },
    /// The amount paid differs from the attested amount.
    #[error("contract payment of {actual} differs from the attested {expected}")]
    ContractAmountMismatch { expected: Amount, actual: Amount },

    // 10xx holds
    /// A held output does not carry the attested hold terms.
    #[error("output {output} does not carry the confirmed hold terms")]
    HoldTermsMismatch { output: usize },
    /// The amount held differs from the attested amount.
    #[error("hold of {actual} differs from the confirmed {expected}")]
    HoldAmountMismatch { expected: Amount, actual: Amount },
    /// A hold or release after the hold's end.
    #[error("the hold ends at {valid_until:?}; this transaction may commit after it")]
    HoldOver { valid_until: Timestamp },
    /// Expiry before the hold's end.
    #[error("the hold is valid until {valid_until:?}; expiry must start after it (window starts {not_before:?})")]
    HoldNotOver { valid_until: Timestamp, not_before: Timestamp },
    /// A release of more than is held.
    #[error("release of {requested} exceeds the {held} held")]
    ReleaseExceedsHeld { held: Amount, requested: Amount },
    /// Released funds go to the recipient, the rest by the hold's kind.
    #[error("output {output}: {reason}")]
    ReleaseOutputMismatch { output: usize, reason: &'static str },
    /// The recipient must get exactly the released amount.
    #[error("recipient gets {actual}, the oracle released {expected}")]
    ReleaseAmountMismatch { expected: Amount, actual: Amount },

    // 11xx VAT
    /// A part of the invoice is paid with the wrong amount.
    #[error("e-invoice {part} part paid with {actual}, invoice says {expected}")]
    InvoiceAmountMismatch { part: &'static str, expected: Amount, actual: Amount },
    /// An output is neither to the seller nor change to the buyer.
    #[error("output {output} goes to neither the invoice's seller nor back to its buyer")]
    InvoicePartyMismatch { output: usize },
    /// VAT tokens may not turn into standard ones here.
    #[error(
        "VAT tokens of {vat_in} would leave as only {vat_out} of VAT: VAT becomes standard only at the tax authority"
    )]
    VatUnmarked { vat_in: Amount, vat_out: Amount },
    /// Standard tokens marked as VAT while own VAT tokens are kept back.
    #[error("the buyer keeps {kept} of VAT tokens while marking standard tokens as VAT: own VAT tokens are used first")]
    VatNotUsedFirst { kept: Amount },
    /// VAT tokens to someone other than the tax authority.
    #[error("output {output}: VAT tokens may be paid only to the tax authority (or as an e-invoice's VAT part)")]
    VatRecipientNotTaxAuthority { output: usize },

    // 12xx mandates
    /// The mandate's validity has ended.
    #[error("mandate valid until {valid_until:?}; this debit may commit after it")]
    MandateOver { valid_until: Timestamp },
    /// An output's mandate terms differ.
    #[error("output {output}: {reason}")]
    MandateOutputMismatch { output: usize, reason: &'static str },

    // 13xx PvP
    /// Inputs or outputs do not form two legs.
    #[error("PvP legs malformed: {reason}")]
    PvpLegs { reason: &'static str },
    /// The quote leg does not match the attested rate.
    #[error("PvP quote leg is {actual}, the attested rate gives {expected}")]
    PvpRateMismatch { expected: Amount, actual: Amount },

    // 14xx enforcement orders and key rotation
    /// The order's signer is not a registered authority.
    #[error("order signed by {authority}, which is not a registered enforcement authority")]
    UnknownAuthority { authority: PublicKey },
    /// The order does not allow this transaction.
    #[error("the order does not allow this: {reason}")]
    OrderMismatch { reason: &'static str },
    /// More than the order names would be collected.
    #[error("collection of {requested} exceeds the ordered {ordered}")]
    CollectionExceedsOrder { ordered: Amount, requested: Amount },
    /// The inputs' host is not a registered participant node.
    #[error("the inputs' host {host} is not a registered participant node")]
    UnknownHost { host: String },
    /// A host-signed command over tokens of several hosts.
    #[error("input {input} is hosted by another node than input 0")]
    MixedHosts { input: usize },
    /// Key rotation must leave every token as it was but for the owner.
    #[error("output {output}: {reason}")]
    RekeyOutputMismatch { output: usize, reason: &'static str },

    // 15xx stablecoins
    /// Mint or burn of a currency that is not a registered stablecoin.
    #[error("{currency} is not a registered stablecoin")]
    UnknownStablecoin { currency: Currency },
    /// The stablecoin minted or burned differs from the DT moved into or out of its reserve.
    #[error("{command} changes the stablecoin supply by {stablecoin} but its reserve by {reserve}: they must be equal")]
    ReserveMismatch { command: &'static str, stablecoin: Amount, reserve: Amount },
    /// Mint and burn spend only the licensed issuer's own tokens.
    #[error("input {input} is not held by the stablecoin's issuer")]
    NotStablecoinIssuer { input: usize },
    /// An output of a mint or burn that is neither the stablecoin, its reserve nor the issuer's DT.
    #[error("output {output}: {reason}")]
    StablecoinOutput { output: usize, reason: &'static str },
    /// A mint or burn that changes nothing.
    #[error("{command} mints or burns nothing")]
    NothingMintedOrBurned { command: &'static str },
    /// Reserve tokens created or spent by another command than the stablecoin's mint or burn.
    #[error(
        "{command} may not create or spend stablecoin reserve tokens ({which}): only a mint adds to a reserve and only a burn releases it"
    )]
    ReserveUntouchable { command: &'static str, which: &'static str },
    /// A stablecoin issued or redeemed like a central bank's currency, without its reserve.
    #[error("{currency} is a stablecoin: it is created only by a mint against DT and destroyed only by a burn")]
    StablecoinWithoutReserve { currency: Currency },
}

impl Rejection {
    /// The stable wire number of the rule.
    pub fn code(&self) -> u16 {
        use Rejection::*;
        match self {
            NoInputs { .. } => 101,
            IssueWithInputs => 102,
            NoOutputs { .. } => 103,
            DuplicateInput { .. } => 104,
            InputsNotResolved { .. } => 105,
            ZeroAmount { .. } => 106,
            InvalidOwnerKey { .. } => 107,
            WindowMalformed => 201,
            WindowTooLong { .. } => 202,
            NotYetValid { .. } => 203,
            WindowExpired { .. } => 204,
            MissingSignature { .. } => 301,
            UnexpectedSignature { .. } => 302,
            DuplicateSignature { .. } => 303,
            BadSignature { .. } => 304,
            ValueNotConserved { .. } => 401,
            Overflow => 402,
            MixedCurrencies { .. } => 403,
            EncumberedInput { .. } => 501,
            MarkedInput { .. } => 502,
            MixedOwners { .. } => 503,
            WrongInputKind { .. } => 504,
            MixedTerms { .. } => 505,
            MissingAttestation { .. } => 601,
            UnexpectedAttestation { .. } => 602,
            UnknownOracle { .. } => 603,
            BadAttestation { .. } => 604,
            AttestationMismatch { .. } => 605,
            UnknownCurrency { .. } => 701,
            OutputNotStandard { .. } => 702,
            RedeemNotIssuerHeld { .. } => 703,
            NothingRedeemed => 704,
            ChangeNotToOwner { .. } => 705,
            MarkingRuleInvalid { .. } => 801,
            RecipientNotAllowed { .. } => 802,
            MarkingLimitExceeded { .. } => 803,
            AllowanceNotConserved { .. } => 804,
            WrongOutputMarking { .. } => 805,
            ContractRecipientMismatch { .. } => 901,
            ContractAmountMismatch { .. } => 902,
            HoldTermsMismatch { .. } => 1001,
            HoldAmountMismatch { .. } => 1002,
            HoldOver { .. } => 1003,
            HoldNotOver { .. } => 1004,
            ReleaseExceedsHeld { .. } => 1005,
            ReleaseOutputMismatch { .. } => 1006,
            ReleaseAmountMismatch { .. } => 1007,
            InvoiceAmountMismatch { .. } => 1101,
            InvoicePartyMismatch { .. } => 1102,
            VatUnmarked { .. } => 1103,
            VatNotUsedFirst { .. } => 1104,
            VatRecipientNotTaxAuthority { .. } => 1105,
            MandateOver { .. } => 1201,
            MandateOutputMismatch { .. } => 1202,
            PvpLegs { .. } => 1301,
            PvpRateMismatch { .. } => 1302,
            UnknownAuthority { .. } => 1401,
            OrderMismatch { .. } => 1402,
            CollectionExceedsOrder { .. } => 1403,
            UnknownHost { .. } => 1404,
            MixedHosts { .. } => 1405,
            RekeyOutputMismatch { .. } => 1406,
            UnknownStablecoin { .. } => 1501,
            ReserveMismatch { .. } => 1502,
            NotStablecoinIssuer { .. } => 1503,
            StablecoinOutput { .. } => 1504,
            NothingMintedOrBurned { .. } => 1505,
            ReserveUntouchable { .. } => 1506,
            StablecoinWithoutReserve { .. } => 1507,
        }
    }

    /// Whether the transaction could never be valid (as opposed to valid at
    /// another time). Only time-window rejections can change with the clock.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Rejection::NotYetValid { .. } | Rejection::HoldNotOver { .. })
    }
}
