//! Bank cards linked to a DA (issue 22.1, docs/cards.md): linking a card
//! (its scheme token and last four digits, never its number), the card
//! network's ISO 8583-modelled messages as JSON — each field named after its
//! data element — relayed by the issuing bank's card processing, and the
//! issuer's answers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Linking a card to a DA (`POST /api/v1/cards`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LinkCardRequest {
    /// The DA it pays from (on the caller's node; the bank keeps its key).
    pub account: String,
    /// The scheme's card token: 8–64 of A–Z, a–z, 0–9, `-`, `_` (never the card number).
    pub token: String,
    /// The card number's last four digits.
    pub last4: String,
    /// Expiry date, `YYMM` (DE 14).
    pub expiry: String,
}

/// A linked card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CardView {
    /// The scheme's token.
    pub token: String,
    /// The last four digits.
    pub last4: String,
    /// The DA it pays from.
    pub account: String,
    /// Expiry date, `YYMM`.
    pub expiry: String,
    /// When it was linked (ms since the epoch).
    pub linked_at_ms: u64,
    /// When it was unlinked (ms since the epoch): only in the answer to an unlink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlinked_at_ms: Option<u64>,
}

/// Unlinking a card (`POST /api/v1/cards/{token}/unlink`): nothing but the
/// token in the path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlinkCardRequest {}

/// A message of the card network to the issuing bank (`POST /api/v1/cards/messages`), ISO 8583 as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CardMessageRequest {
    /// Message type indicator: `0100` authorisation, `0120` authorisation
    /// advice, `0400` reversal, `0420` reversal advice, `1240` presentment
    /// (clearing of a purchase, or a refund with processing code `200000`).
    pub mti: String,
    /// DE 3 processing code: `000000` purchase, `200000` refund.
    pub processing_code: String,
    /// DE 4 amount, in tiyn.
    pub amount_tiyn: u64,
    /// DE 49 currency, ISO 4217 numeric (`398`).
    pub currency: u16,
    /// DE 7 transmission time (ms since the epoch).
    pub transmitted_at_ms: u64,
    /// DE 11 system trace audit number, six digits.
    pub stan: String,
    /// The scheme's card token (in place of DE 2, the card number).
    pub card_token: String,
    /// DE 14 expiry date as read from the card, `YYMM` (authorisations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_expiry: Option<String>,
    /// DE 32 acquiring institution id (digits).
    pub acquirer_id: String,
    /// The acquirer's settlement DA (address) that a capture pays.
    pub acquirer_account: String,
    /// DE 37 retrieval reference number, 12 letters or digits.
    pub rrn: String,
    /// DE 90's RRN: for a refund, the purchase it pays back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_rrn: Option<String>,
    /// DE 95 replacement amount, in tiyn: on a reversal (0400/0420), what the
    /// payment really comes to; the rest of the hold is released and this
    /// much stays held (a partial reversal). Absent or 0: a full reversal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_amount_tiyn: Option<u64>,
}

/// The issuing bank's answer to a card message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CardMessageResponse {
    /// Message type indicator of the answer (`0110`, `0130`, `0410`, `0430`, `1250`).
    pub mti: String,
    /// DE 11, echoed.
    pub stan: String,
    /// DE 37, echoed.
    pub rrn: String,
    /// DE 39 response code: `00` approved, `12` invalid transaction, `13`
    /// invalid amount, `14` invalid card, `25` original not found, `51`
    /// insufficient funds, `54` expired card, `57` not permitted to the
    /// cardholder, `91` issuer unavailable (retransmit), `94` duplicate
    /// transmission, `96` system malfunction.
    pub response_code: String,
    /// DE 38 approval code (approvals).
    #[serde(default)]
    pub approval_code: Option<String>,
    /// DE 4: what was held, captured, released or refunded, in tiyn.
    pub amount_tiyn: u64,
    /// The DT transaction that carried it out, if any.
    #[serde(default)]
    pub tx: Option<String>,
}

/// A card payment as the issuer keeps it (`GET /api/v1/cards/payments/{rrn}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CardPaymentView {
    /// DE 37 of its authorisation.
    pub rrn: String,
    /// The card's token.
    pub card_token: String,
    /// The DA paying.
    pub account: String,
    /// DE 32.
    pub acquirer_id: String,
    /// `authorised`, `captured`, `reversed` or `expired`.
    pub state: String,
    /// Held at authorisation, in tiyn.
    pub authorised_tiyn: u64,
    /// Paid to the acquirer, in tiyn.
    pub captured_tiyn: u64,
    /// Paid back, in tiyn.
    pub refunded_tiyn: u64,
    /// The hold's end (ms since the epoch).
    pub valid_until_ms: u64,
    /// Its DT transactions: hold, then capture or release, then refunds.
    pub txs: Vec<String>,
}
