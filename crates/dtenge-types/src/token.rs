//! Tokens: the unspent outputs that are the money itself.
//!
//! A token is consumed whole by the transaction that spends it. Its rules travel
//! inside it: a *marking* says where it may go (purpose-bound money, SPEC §4.2),
//! an *encumbrance* says who else controls it (a hold for an oracle event, or a
//! debit mandate, SPEC §4.1, §4.4). Marked and encumbered tokens are never
//! mixed in one token: holds and mandates apply to standard money only.
//!
//! The notary knows a token only by its commitment: its host bound to the hash
//! of its id and its canonical encoding (the *sealed* hash). Two tokens with
//! the same contents still differ by id; a claim can open a commitment to its
//! host without showing anything else of the token.

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::{Digest, Hasher};
use serde::{Deserialize, Serialize};

use crate::bounded::BoundedVec;
use crate::encoding::HashWriter;
use crate::ids::{
    Address, Currency, EventId, MandateId, MarkingRef, ParameterId, ParticipantId, TimeWindow, Timestamp, TokenId,
};
use crate::{Amount, MAX_MARKING_DEPTH, MAX_RECIPIENTS_PER_LEVEL};

/// One unit of value on the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Token {
    /// Which money this is.
    pub currency: Currency,
    /// How much, in tiyn; always positive in a valid transaction.
    pub amount: Amount,
    /// The DA that owns it.
    pub owner: Address,
    /// The participant node that hosts the owner's DA.
    pub host: ParticipantId,
    /// Purpose-binding rules, if any.
    pub marking: Option<Marking>,
    /// A hold or mandate, if any.
    pub encumbrance: Option<Encumbrance>,
}

impl Token {
    /// A standard (unmarked, unencumbered) token.
    pub fn standard(currency: Currency, amount: Amount, owner: Address, host: ParticipantId) -> Token {
        Token { currency, amount, owner, host, marking: None, encumbrance: None }
    }

    /// Neither marked nor encumbered.
    pub fn is_standard(&self) -> bool {
        self.marking.is_none() && self.encumbrance.is_none()
    }

    /// The kind of balance it counts towards.
    pub fn kind(&self) -> TokenKind {
        match (&self.marking, &self.encumbrance) {
            (_, Some(Encumbrance::Hold(_))) => TokenKind::Held,
            (_, Some(Encumbrance::Mandate(_))) => TokenKind::Mandated,
            (_, Some(Encumbrance::Reserve(_))) => TokenKind::Reserve,
            (Some(Marking::Vat), None) => TokenKind::Vat,
            (Some(_), None) => TokenKind::Marked,
            (None, None) => TokenKind::Standard,
        }
    }

    /// The hash of the whole token under `id`: hides amount, owner,
    /// marking and host; half of the token's commitment.
    pub fn sealed(&self, id: &TokenId) -> Digest {
        let mut hasher = Hasher::new(b"dtenge/token/v1");
        let mut writer = HashWriter(&mut hasher);
        // Writing into a hasher cannot fail.
        let _ = BorshSerialize::serialize(id, &mut writer);
        let _ = BorshSerialize::serialize(self, &mut writer);
        hasher.finish()
    }

    /// The commitment the notary stores for this token under `id`: its
    /// host bound to its sealed hash ([`Commitment::bound`]), so that a
    /// claim can show the notary an input's host and nothing else.
    pub fn commitment(&self, id: &TokenId) -> Commitment {
        Commitment::bound(&self.host, &self.sealed(id))
    }
}

/// What a balance is made of, as shown to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Free to spend.
    Standard,
    /// Purpose-bound by address or by parameter.
    Marked,
    /// Held for an oracle event.
    Held,
    /// VAT-marked.
    Vat,
    /// Reserved for a debit mandate.
    Mandated,
    /// DT in a stablecoin's reserve: spent only by a burn of that stablecoin.
    Reserve,
}

/// The hash of a token and its id: all the notary ever learns of a token.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Commitment(pub Digest);

impl Commitment {
    /// The commitment of a token hosted by `host` whose sealed hash is
    /// `sealed` ([`Token::sealed`]). Whoever knows a commitment cannot name
    /// another host for it (that would need a second preimage); whoever
    /// knows the token can open it only to its real host.
    pub fn bound(host: &ParticipantId, sealed: &Digest) -> Commitment {
        let host = host.as_str().as_bytes();
        let length = u32::try_from(host.len()).unwrap_or(u32::MAX).to_le_bytes();
        Commitment(dtenge_crypto::hash(b"dtenge/commitment/v2", &[&length[..], host, &sealed.as_bytes()[..]]))
    }
}

/// Purpose-binding rules carried by a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Marking {
    /// Marking by public address: allowed recipients and limits per level (§4.2.1).
    Address(AddressMarking),
    /// Marking by parameter: moves only under a contract the oracle attests (§4.2.2).
    Parameter(ParameterMarking),
    /// VAT: spendable only as the VAT part of an e-invoice or to the tax authority (§4.2.3).
    Vat,
}

/// The fixed part of an address marking, identical in every token it marks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct MarkingRule {
    /// The initiator's name for this marking.
    pub reference: MarkingRef,
    /// The DA that marked the funds (a GA on the Treasury node).
    pub initiator: Address,
    /// The node that receives traceability copies.
    pub initiator_node: ParticipantId,
    /// Levels 1..=depth: who may receive at that level and how much in all.
    pub levels: BoundedVec<MarkingLevel, MAX_MARKING_DEPTH>,
}

impl MarkingRule {
    /// The number of levels after the marking recipient.
    pub fn depth(&self) -> usize {
        self.levels.len()
    }
}

/// One level of an address marking.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct MarkingLevel {
    /// The DAs allowed to receive at this level.
    pub recipients: BoundedVec<Address, MAX_RECIPIENTS_PER_LEVEL>,
    /// The most that may reach this level in all.
    pub limit: Amount,
}

/// An address marking as carried by one token.
///
/// `level` is the holder's level: 0 for the marking recipient. `allowances[i]`
/// is how much of the limit of level `level + 1 + i` this token still carries;
/// allowances split and merge with the tokens, so a level's limit can be
/// checked from the tokens alone, without a shared counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AddressMarking {
    /// The rules.
    pub rule: MarkingRule,
    /// The holder's level, 0..depth.
    pub level: u8,
    /// Remaining allowance for each deeper level; `depth - level` entries.
    pub allowances: BoundedVec<Amount, MAX_MARKING_DEPTH>,
}

/// A parameter marking as carried by one token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ParameterMarking {
    /// The state order number registered by the Smart Contract Portal.
    pub parameter: ParameterId,
    /// The DA that marked the funds.
    pub initiator: Address,
    /// The node that receives traceability copies.
    pub initiator_node: ParticipantId,
}

/// Who else controls a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Encumbrance {
    /// Held for an oracle event (§4.1).
    Hold(Hold),
    /// Reserved for debits by a grantee under a mandate (§4.4).
    Mandate(MandateTerms),
    /// DT backing a stablecoin 1:1 (SPEC §9): created only by a mint of that
    /// stablecoin and spent only by its burn.
    Reserve(ReserveTerms),
}

/// What reserve DT back, identical in every token of one reserve.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReserveTerms {
    /// The stablecoin whose supply these DT back.
    pub stablecoin: Currency,
}

/// The terms of a hold, identical in every token it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Hold {
    /// The oracle event that releases it.
    pub event: EventId,
    /// Who receives it on release.
    pub recipient: Address,
    /// The recipient's node.
    pub recipient_node: ParticipantId,
    /// After this instant the funds return to the owner.
    pub valid_until: Timestamp,
    /// One release, or repeated releases until exhausted.
    pub kind: HoldKind,
}

/// Single or recurring hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldKind {
    /// One release; the rest returns to the owner.
    Single,
    /// The rest stays held for the next occurrence.
    Recurring,
}

/// The terms of a debit mandate, identical in every token it covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct MandateTerms {
    /// The mandate's id.
    pub mandate: MandateId,
    /// The key allowed to debit (the issuing bank's DA).
    pub grantee: Address,
    /// Debits must commit before this instant.
    pub valid_until: Timestamp,
}

impl Hold {
    /// Whether `window` lies entirely before the hold's end, so a release in it
    /// cannot race the expiry.
    pub fn open_during(&self, window: &TimeWindow) -> bool {
        window.not_after <= self.valid_until
    }
}
