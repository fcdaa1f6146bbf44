//! The card network's messages, modelled on ISO 8583 (docs/cards.md): the
//! message type indicators of a card payment, the data elements the issuer
//! decides on (named after their ISO 8583 numbers) and the scheme's
//! response codes.
//!
//! ```text
//!  network ─ 0100 authorisation request ─► issuer   ◄─ 0110 (00 / 51 / 54 / 57 …)
//!          ─ 0120 authorisation advice  ─►          ◄─ 0130
//!          ─ 0400 reversal request      ─►          ◄─ 0410
//!          ─ 0420 reversal advice       ─►          ◄─ 0430
//!          ─ 1240 presentment (purchase: capture; refund: pay back) ─► ◄─ 1250
//! ```
//!
//! A retransmission repeats a message's type, STAN (DE 11) and RRN (DE 37):
//! [`MessageKey`]. The card itself travels as the scheme's token (never a PAN).

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_types::{Address, Amount, Timestamp, TxId};
use serde::{Deserialize, Serialize};

use crate::NodeError;

/// ISO 4217 numeric code of the tenge (DE 49): the only currency a DA's card pays in.
pub const CURRENCY_KZT: u16 = 398;
/// Longest card token (the scheme's, not a PAN).
pub const CARD_TOKEN_CHARS_MAX: usize = 64;
/// Shortest card token.
pub const CARD_TOKEN_CHARS_MIN: usize = 8;
/// Longest acquiring institution id (DE 32 is up to 11 digits).
pub const ACQUIRER_ID_CHARS_MAX: usize = 11;

fn invalid(what: &str, detail: impl std::fmt::Display) -> NodeError {
    NodeError::Invalid(format!("{what}: {detail}"))
}

macro_rules! checked_text {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
        )]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks and wraps `text`.
            pub fn new(text: impl Into<String>) -> Result<Self, NodeError> {
                let text = text.into();
                let check: fn(&str) -> Result<(), String> = $check;
                check(&text).map_err(|e| invalid($what, e))?;
                Ok($name(text))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NodeError;
            fn try_from(text: String) -> Result<Self, NodeError> {
                $name::new(text)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

    };
}

fn digits(text: &str, len: usize) -> Result<(), String> {
    if text.len() == len && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("must be exactly {len} digits, got {text:?}"))
    }
}

checked_text!(
    /// The scheme's card token (the card as the issuer knows it: never the PAN).
    CardToken,
    "card token",
    |t| {
        let ok_len = (CARD_TOKEN_CHARS_MIN..=CARD_TOKEN_CHARS_MAX).contains(&t.len());
        if ok_len && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            Ok(())
        } else {
            Err(format!(
                "{CARD_TOKEN_CHARS_MIN} to {CARD_TOKEN_CHARS_MAX} characters of A-Z, a-z, 0-9, '-' and '_'"
            ))
        }
    }
);
checked_text!(
    /// The card number's last four digits, shown to the holder.
    Last4,
    "last four digits",
    |t| digits(t, 4)
);
checked_text!(
    /// System trace audit number (DE 11): the sender's number of this message.
    Stan,
    "STAN (DE 11)",
    |t| digits(t, 6)
);
checked_text!(
    /// Retrieval reference number (DE 37): names one card payment from
    /// authorisation to clearing; a refund has its own.
    Rrn,
    "RRN (DE 37)",
    |t| {
        if t.len() == 12 && t.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(())
        } else {
            Err("must be exactly 12 letters or digits".into())
        }
    }
);
checked_text!(
    /// Acquiring institution identification code (DE 32).
    AcquirerId,
    "acquirer id (DE 32)",
    |t| {
        if !t.is_empty() && t.len() <= ACQUIRER_ID_CHARS_MAX && t.bytes().all(|b| b.is_ascii_digit()) {
            Ok(())
        } else {
            Err(format!("1 to {ACQUIRER_ID_CHARS_MAX} digits"))
        }
    }
);

/// A card's expiry date (DE 14, `YYMM`): valid through the last day of the
/// month, Astana time.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct CardExpiry {
    year: u8,
    month: u8,
}

impl CardExpiry {
    /// From `YYMM` (years 2000–2099).
    pub fn parse(text: &str) -> Result<CardExpiry, NodeError> {
        digits(text, 4).map_err(|e| invalid("card expiry (DE 14, YYMM)", e))?;
        let n: u16 = text.parse().map_err(|e| invalid("card expiry (DE 14, YYMM)", e))?;
        let (year, month) = ((n / 100) as u8, (n % 100) as u8);
        if !(1..=12).contains(&month) {
            return Err(invalid("card expiry (DE 14, YYMM)", format!("month {month} is not 01 to 12")));
        }
        Ok(CardExpiry { year, month })
    }

    /// The first instant at which the card no longer pays: the start of the
    /// following month in Astana.
    pub fn ends_at(&self) -> Timestamp {
        let (year, month) =
            if self.month == 12 { (self.year as i64 + 1, 1) } else { (self.year as i64, self.month + 1) };
        dtenge_cbs::astana_month_start(2000 + year, i64::from(month))
    }
}

impl TryFrom<String> for CardExpiry {
    type Error = NodeError;
    fn try_from(text: String) -> Result<Self, NodeError> {
        CardExpiry::parse(&text)
    }
}

impl From<CardExpiry> for String {
    fn from(e: CardExpiry) -> String {
        e.to_string()
    }
}

impl std::fmt::Display for CardExpiry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}{:02}", self.year, self.month)
    }
}

/// Message type indicator (ISO 8583:1987 for authorisation and reversal,
/// ISO 8583:1993's 1240 for clearing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub enum Mti {
    /// 0100: the acquirer asks the issuer to approve and hold.
    AuthorisationRequest,
    /// 0110.
    AuthorisationResponse,
    /// 0120: the network approved on the issuer's behalf (stand-in); the issuer holds.
    AuthorisationAdvice,
    /// 0130.
    AuthorisationAdviceResponse,
    /// 0400: the acquirer cancels an authorisation: the hold is released.
    ReversalRequest,
    /// 0410.
    ReversalResponse,
    /// 0420: the network tells the issuer an authorisation was reversed.
    ReversalAdvice,
    /// 0430.
    ReversalAdviceResponse,
    /// 1240: first presentment (clearing): captures a purchase, or presents a refund.
    Presentment,
    /// 1250.
    PresentmentResponse,
}

impl Mti {
    /// The four digits.
    pub fn code(self) -> &'static str {
        match self {
            Mti::AuthorisationRequest => "0100",
            Mti::AuthorisationResponse => "0110",
            Mti::AuthorisationAdvice => "0120",
            Mti::AuthorisationAdviceResponse => "0130",
            Mti::ReversalRequest => "0400",
            Mti::ReversalResponse => "0410",
            Mti::ReversalAdvice => "0420",
            Mti::ReversalAdviceResponse => "0430",
            Mti::Presentment => "1240",
            Mti::PresentmentResponse => "1250",
        }
    }

    /// From the four digits.
    pub fn parse(code: &str) -> Result<Mti, NodeError> {
        [
            Mti::AuthorisationRequest,
            Mti::AuthorisationResponse,
            Mti::AuthorisationAdvice,
            Mti::AuthorisationAdviceResponse,
            Mti::ReversalRequest,
            Mti::ReversalResponse,
            Mti::ReversalAdvice,
            Mti::ReversalAdviceResponse,
            Mti::Presentment,
            Mti::PresentmentResponse,
        ]
        .into_iter()
        .find(|m| m.code() == code)
        .ok_or_else(|| invalid("MTI", format!("{code:?} is not a card payment message this issuer handles")))
    }

    /// Whether the issuer answers it (a request or advice).
    pub fn is_request(self) -> bool {
        self.response().is_some()
    }

    /// The answer's type to a request, `None` for an answer.
    pub fn response(self) -> Option<Mti> {
        match self {
            Mti::AuthorisationRequest => Some(Mti::AuthorisationResponse),
            Mti::AuthorisationAdvice => Some(Mti::AuthorisationAdviceResponse),
            Mti::ReversalRequest => Some(Mti::ReversalResponse),
            Mti::ReversalAdvice => Some(Mti::ReversalAdviceResponse),
            Mti::Presentment => Some(Mti::PresentmentResponse),
            Mti::AuthorisationResponse
            | Mti::AuthorisationAdviceResponse
            | Mti::ReversalResponse
            | Mti::ReversalAdviceResponse
            | Mti::PresentmentResponse => None,
        }
    }
}

/// The transaction type (DE 3, first two digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub enum TransactionType {
    /// `00`: goods and services.
    Purchase,
    /// `20`: returns (a refund).
    Refund,
}

impl TransactionType {
    /// DE 3 as six digits (from and to the default account).
    pub fn processing_code(self) -> &'static str {
        match self {
            TransactionType::Purchase => "000000",
            TransactionType::Refund => "200000",
        }
    }

    /// From DE 3.
    pub fn parse(code: &str) -> Result<TransactionType, NodeError> {
        match code {
            "000000" => Ok(TransactionType::Purchase),
            "200000" => Ok(TransactionType::Refund),
            other => Err(invalid("processing code (DE 3)", format!("{other:?} is neither 000000 nor 200000"))),
        }
    }
}

/// The scheme's response code (DE 39). Codes are the scheme's; a variant is
/// only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub enum ResponseCode {
    /// 00 approved.
    Approved,
    /// 12 invalid transaction (e.g. a clearing for an authorisation reversed or expired).
    InvalidTransaction,
    /// 13 invalid amount (more than authorised, captured or left to refund; zero; not tenge).
    InvalidAmount,
    /// 14 invalid card number (no card linked under this token).
    InvalidCard,
    /// 25 unable to locate the original.
    OriginalNotFound,
    /// 51 insufficient funds.
    InsufficientFunds,
    /// 54 expired card.
    ExpiredCard,
    /// 57 transaction not permitted to the cardholder (a frozen or closed DA,
    /// a KYC-tier limit, funds that are marked or held).
    NotPermitted,
    /// 91 issuer unavailable: nothing was recorded, the message may be retransmitted.
    IssuerUnavailable,
    /// 94 duplicate transmission: a message reuses another's STAN and RRN with other data.
    Duplicate,
    /// 96 system malfunction (the ledger refused the transaction).
    SystemMalfunction,
}

impl ResponseCode {
    /// The two characters of DE 39.
    pub fn code(self) -> &'static str {
        match self {
            ResponseCode::Approved => "00",
            ResponseCode::InvalidTransaction => "12",
            ResponseCode::InvalidAmount => "13",
            ResponseCode::InvalidCard => "14",
            ResponseCode::OriginalNotFound => "25",
            ResponseCode::InsufficientFunds => "51",
            ResponseCode::ExpiredCard => "54",
            ResponseCode::NotPermitted => "57",
            ResponseCode::IssuerUnavailable => "91",
            ResponseCode::Duplicate => "94",
            ResponseCode::SystemMalfunction => "96",
        }
    }
}

/// The key of a message: a retransmission repeats it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct MessageKey {
    /// The message type.
    pub mti: Mti,
    /// DE 11.
    pub stan: Stan,
    /// DE 37.
    pub rrn: Rrn,
}

/// A message from the card network to the issuer. Its borsh encoding is
/// hand-written (below) so that messages journaled before DE 95 existed
/// still read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardMessage {
    /// The message type (a request or advice).
    pub mti: Mti,
    /// DE 3.
    pub transaction: TransactionType,
    /// DE 4, in tiyn.
    pub amount: Amount,
    /// DE 49, ISO 4217 numeric.
    pub currency: u16,
    /// DE 7: when the network sent it.
    pub transmitted_at: Timestamp,
    /// DE 11.
    pub stan: Stan,
    /// DE 2's replacement: the scheme's card token.
    pub card: CardToken,
    /// DE 14, as read from the card (authorisations).
    pub card_expiry: Option<CardExpiry>,
    /// DE 32.
    pub acquirer: AcquirerId,
    /// The acquiring bank's settlement DA (the scheme's directory entry for DE 32):
    /// where a capture pays.
    pub acquirer_account: Address,
    /// DE 37: the payment's (an authorisation, its reversal and clearing share it).
    pub rrn: Rrn,
    /// DE 90's RRN: for a refund, the purchase it pays back.
    pub original_rrn: Option<Rrn>,
    /// DE 95 replacement amount, in tiyn: on a reversal, what the payment
    /// really comes to — a partial reversal releases the rest and keeps this
    /// much held; absent (or zero) on a full reversal.
    pub replacement: Option<Amount>,
}

/// The encoding of DE 90 and DE 95 together, in the place DE 90 had alone
/// (`Option<Rrn>`: tag 0 none, 1 an RRN), so that records written before
/// DE 95 read unchanged; tag 2 is a replacement amount. One message never
/// carries both ([`CardMessage::check_references`]).
#[derive(BorshSerialize, BorshDeserialize)]
enum References {
    None,
    Original(Rrn),
    Replacement(Amount),
}

impl BorshSerialize for CardMessage {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        let references = match (&self.original_rrn, self.replacement) {
            (None, None) => References::None,
            (Some(rrn), None) => References::Original(rrn.clone()),
            (None, Some(amount)) => References::Replacement(amount),
            (Some(_), Some(_)) => {
                return Err(std::io::Error::other("a card message carries DE 90 or DE 95, not both"));
            }
        };
        BorshSerialize::serialize(&self.mti, writer)?;
        BorshSerialize::serialize(&self.transaction, writer)?;
        BorshSerialize::serialize(&self.amount, writer)?;
        BorshSerialize::serialize(&self.currency, writer)?;
        BorshSerialize::serialize(&self.transmitted_at, writer)?;
        BorshSerialize::serialize(&self.stan, writer)?;
        BorshSerialize::serialize(&self.card, writer)?;
        BorshSerialize::serialize(&self.card_expiry, writer)?;
        BorshSerialize::serialize(&self.acquirer, writer)?;
        BorshSerialize::serialize(&self.acquirer_account, writer)?;
        BorshSerialize::serialize(&self.rrn, writer)?;
        BorshSerialize::serialize(&references, writer)
    }
}

impl BorshDeserialize for CardMessage {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let mti = Mti::deserialize_reader(reader)?;
        let transaction = TransactionType::deserialize_reader(reader)?;
        let amount = Amount::deserialize_reader(reader)?;
        let currency = u16::deserialize_reader(reader)?;
        let transmitted_at = Timestamp::deserialize_reader(reader)?;
        let stan = Stan::deserialize_reader(reader)?;
        let card = CardToken::deserialize_reader(reader)?;
        let card_expiry = Option::<CardExpiry>::deserialize_reader(reader)?;
        let acquirer = AcquirerId::deserialize_reader(reader)?;
        let acquirer_account = Address::deserialize_reader(reader)?;
        let rrn = Rrn::deserialize_reader(reader)?;
        let (original_rrn, replacement) = match References::deserialize_reader(reader)? {
            References::None => (None, None),
            References::Original(rrn) => (Some(rrn), None),
            References::Replacement(amount) => (None, Some(amount)),
        };
        Ok(CardMessage {
            mti,
            transaction,
            amount,
            currency,
            transmitted_at,
            stan,
            card,
            card_expiry,
            acquirer,
            acquirer_account,
            rrn,
            original_rrn,
            replacement,
        })
    }
}

impl CardMessage {
    /// DE 90 belongs to a refund and DE 95 to a reversal; a message with
    /// both is refused before anything is journaled.
    pub fn check_references(&self) -> Result<(), NodeError> {
        if self.original_rrn.is_some() && self.replacement.is_some() {
            return Err(invalid(
                "card message",
                "DE 90 (a refund's original) and DE 95 (a reversal's replacement amount) never come together",
            ));
        }
        if self.replacement.is_some() && !matches!(self.mti, Mti::ReversalRequest | Mti::ReversalAdvice) {
            return Err(invalid("DE 95 replacement amount", "only a reversal (0400, 0420) carries one"));
        }
        Ok(())
    }

    /// What a retransmission repeats.
    pub fn key(&self) -> MessageKey {
        MessageKey { mti: self.mti, stan: self.stan.clone(), rrn: self.rrn.clone() }
    }
}

/// The issuer's answer.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CardResponse {
    /// The response type (0110, 0130, 0410, 0430, 1250).
    pub mti: Mti,
    /// DE 11, echoed.
    pub stan: Stan,
    /// DE 37, echoed.
    pub rrn: Rrn,
    /// DE 39.
    pub code: ResponseCode,
    /// DE 38 (approvals): six characters of the transaction that did it.
    pub approval_code: Option<String>,
    /// DE 4: what was held, captured, released or refunded (zero on a decline).
    pub amount: Amount,
    /// The DT transaction that carried it out, if one did.
    pub tx: Option<TxId>,
}

impl CardResponse {
    /// A response to `message` with `code` and nothing moved.
    pub fn declined(message: &CardMessage, code: ResponseCode) -> CardResponse {
        CardResponse {
            mti: message.mti.response().unwrap_or(message.mti),
            stan: message.stan.clone(),
            rrn: message.rrn.clone(),
            code,
            approval_code: None,
            amount: Amount::ZERO,
            tx: None,
        }
    }

    /// An approval of `message` that moved `amount` in `tx` (or nothing).
    pub fn approved(message: &CardMessage, amount: Amount, tx: Option<TxId>) -> CardResponse {
        let approval_code = Some(match &tx {
            Some(tx) => tx.to_string().chars().filter(|c| c.is_ascii_alphanumeric()).take(6).collect::<String>(),
            None => "000000".to_string(),
        });
        CardResponse {
            code: ResponseCode::Approved,
            approval_code,
            amount,
            tx,
            ..CardResponse::declined(message, ResponseCode::Approved)
        }
    }
}
