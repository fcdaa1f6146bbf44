//! Identifiers: participants, currencies, DA addresses, transactions, tokens
//! and the free-text references (event ids, contract numbers, invoice ids …)
//! that commands name.
//!
//! Every text identifier has a byte bound and refuses control characters, so
//! one can be printed in a log, a table or an XML file without escaping
//! surprises.

use std::fmt;
use std::str::FromStr;

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::{Digest, PublicKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::TypesError;
use crate::bounded::read_bounded_string;

/// Declares a bounded, printable text identifier.
macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $max:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize)]
        pub struct $name(String);

        impl $name {
            /// The byte bound.
            pub const MAX_LEN: usize = $max;

            /// Checks and wraps `text`.
            pub fn new(text: impl Into<String>) -> Result<Self, TypesError> {
                let text = text.into();
                check_text(&text, $max, $what)?;
                Ok(Self(text))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = TypesError;
            fn from_str(s: &str) -> Result<Self, TypesError> {
                Self::new(s)
            }
        }

        impl BorshDeserialize for $name {
            fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
                let text = read_bounded_string(reader, $max)?;
                Self::new(text)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as Deserialize>::deserialize(deserializer)?;
                Self::new(text).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Characters that print as nothing or reorder what follows: controls, line
/// and paragraph separators, zero-width and bidirectional format characters,
/// the byte-order mark and non-characters.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{FFFE}' | '\u{FFFF}')
}

fn check_text(text: &str, max: usize, what: &'static str) -> Result<(), TypesError> {
    if text.trim().is_empty() {
        return Err(TypesError::Text { what, reason: "must not be empty".into() });
    }
    if text.trim() != text {
        return Err(TypesError::Text { what, reason: "must not start or end with spaces".into() });
    }
    if text.len() > max {
        return Err(TypesError::Text { what, reason: format!("is {} bytes long, the maximum is {max}", text.len()) });
    }
    if text.chars().any(is_invisible) {
        return Err(TypesError::Text {
            what,
            reason: "must not contain control, zero-width or text-direction characters".into(),
        });
    }
    Ok(())
}

text_id!(
    /// An event registered on the oracle (holds and their releases).
    EventId, 64, "event id"
);
text_id!(
    /// A marking parameter: a state order number from the Smart Contract Portal.
    ParameterId, 64, "marking parameter"
);
text_id!(
    /// A contract number under a marking parameter.
    ContractNo, 64, "contract number"
);
text_id!(
    /// An electronic invoice id from the tax service (ISEI).
    InvoiceId, 64, "e-invoice id"
);
text_id!(
    /// A debit mandate id.
    MandateId, 64, "mandate id"
);
text_id!(
    /// The reference of a core banking system confirmation (issue, redeem).
    CbsRef, 64, "CBS reference"
);
text_id!(
    /// The reference a marking initiator gives a marking (e.g. a budget programme).
    MarkingRef, 64, "marking reference"
);
text_id!(
    /// A payment's purpose text, shown to both parties.
    Memo, 140, "memo"
);
text_id!(
    /// An enforcement order's reference as the authority that issued it numbers it
    /// (e.g. a court case or an enforcement proceeding number).
    OrderRef, 64, "order reference"
);

/// A participant of the platform: a node operator (NBK, a bank, the Treasury)
/// or a service (notary, oracle). Upper-case ASCII letters, digits, `-` and
/// `_`, 1–32 characters: `NBK`, `STB1`, `TREASURY`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize)]
pub struct ParticipantId(String);

impl ParticipantId {
    /// Checks and wraps an id.
    pub fn new(text: impl Into<String>) -> Result<Self, TypesError> {
        let text = text.into();
        let valid = !text.is_empty()
            && text.len() <= 32
            && text.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            return Err(TypesError::Text {
                what: "participant id",
                reason: format!(
                    "{:?} must be 1-32 characters of A-Z, 0-9, '-' or '_'",
                    text.chars().take(40).collect::<String>()
                ),
            });
        }
        Ok(Self(text))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ParticipantId({})", self.0)
    }
}

impl FromStr for ParticipantId {
    type Err = TypesError;
    fn from_str(s: &str) -> Result<Self, TypesError> {
        Self::new(s)
    }
}

impl BorshDeserialize for ParticipantId {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let text = read_bounded_string(reader, 32)?;
        Self::new(text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
    }
}

impl Serialize for ParticipantId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ParticipantId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(<String as Deserialize>::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// A currency on the ledger, by code: `DT` (the digital tenge, issued by NBK)
/// and, for cross-border payments, other central banks' currencies. 2–8
/// upper-case ASCII letters or digits. Who may issue a currency is a platform
/// parameter, not part of the code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize)]
pub struct Currency {
    len: u8,
    code: [u8; 8],
}

impl Currency {
    /// The digital tenge.
    pub const DT: Currency = Currency { len: 2, code: *b"DT\0\0\0\0\0\0" };

    /// Checks and wraps a code.
    pub fn new(code: &str) -> Result<Currency, TypesError> {
        let bytes = code.as_bytes();
        let valid =
            (2..=8).contains(&bytes.len()) && bytes.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !valid {
            return Err(TypesError::Text {
                what: "currency code",
                reason: format!("{:?} must be 2-8 characters of A-Z or 0-9", code.chars().take(20).collect::<String>()),
            });
        }
        let mut padded = [0u8; 8];
        padded[..bytes.len()].copy_from_slice(bytes);
        Ok(Currency { len: bytes.len() as u8, code: padded })
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        let len = usize::from(self.len).min(8);
        std::str::from_utf8(&self.code[..len]).unwrap_or("??")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl FromStr for Currency {
    type Err = TypesError;
    fn from_str(s: &str) -> Result<Self, TypesError> {
        Self::new(s)
    }
}

impl BorshDeserialize for Currency {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let len = u8::deserialize_reader(reader)?;
        let code = <[u8; 8]>::deserialize_reader(reader)?;
        let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed currency code");
        let used = code.get(..usize::from(len)).ok_or_else(invalid)?;
        // Canonical: padding must be zero, so each currency has one encoding.
        if code[usize::from(len)..].iter().any(|b| *b != 0) {
            return Err(invalid());
        }
        let text = std::str::from_utf8(used).map_err(|_| invalid())?;
        Currency::new(text).map_err(|_| invalid())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Currency::new(&<String as Deserialize>::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// A digital account's public address: the Ed25519 public key that owns its
/// tokens. Spending a token needs a signature by its owner's key.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Address(pub PublicKey);

impl Address {
    /// The owning key.
    pub fn public_key(&self) -> &PublicKey {
        &self.0
    }
}

impl From<PublicKey> for Address {
    fn from(key: PublicKey) -> Self {
        Address(key)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", &self.0.to_string()[..12])
    }
}

impl FromStr for Address {
    type Err = TypesError;
    fn from_str(s: &str) -> Result<Self, TypesError> {
        PublicKey::from_str(s).map(Address).map_err(|e| TypesError::Text { what: "address", reason: e.to_string() })
    }
}

/// A transaction's id: the SHA-256 of its canonical body encoding.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct TxId(pub Digest);

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxId({})", self.0.short())
    }
}

impl FromStr for TxId {
    type Err = TypesError;
    fn from_str(s: &str) -> Result<Self, TypesError> {
        Digest::from_str(s).map(TxId).map_err(|e| TypesError::Text { what: "transaction id", reason: e.to_string() })
    }
}

/// A token's id: the transaction that created it and its output index.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct TokenId {
    /// The creating transaction.
    pub tx: TxId,
    /// The output index within it.
    pub index: u16,
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.tx, self.index)
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.tx.0.short(), self.index)
    }
}

impl FromStr for TokenId {
    type Err = TypesError;
    fn from_str(s: &str) -> Result<Self, TypesError> {
        let bad = |reason: &str| TypesError::Text { what: "token id", reason: reason.into() };
        let (tx, index) = s.split_once(':').ok_or_else(|| bad("expected <transaction id>:<output index>"))?;
        Ok(TokenId { tx: tx.parse()?, index: index.parse().map_err(|_| bad("output index must be a number 0-65535"))? })
    }
}

/// Milliseconds since the Unix epoch (UTC). The ledger never reads a clock:
/// time is given to it.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Milliseconds in a day.
    pub const DAY_MS: u64 = 86_400_000;

    /// Milliseconds since the epoch.
    pub fn millis(self) -> u64 {
        self.0
    }

    /// `self + ms`, saturating at the far future.
    pub fn plus_millis(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// `self + days`, saturating.
    pub fn plus_days(self, days: u64) -> Timestamp {
        self.plus_millis(days.saturating_mul(Self::DAY_MS))
    }
}

/// When a transaction may be committed: `not_before ≤ now ≤ not_after`,
/// both inclusive. Every transaction has both ends, so an oracle reservation
/// or a notary entry never waits forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TimeWindow {
    /// Earliest commit time.
    pub not_before: Timestamp,
    /// Latest commit time.
    pub not_after: Timestamp,
}

impl TimeWindow {
    /// A window from `now` for `length_ms`.
    pub fn starting(now: Timestamp, length_ms: u64) -> TimeWindow {
        TimeWindow { not_before: now, not_after: now.plus_millis(length_ms) }
    }

    /// Whether `now` lies inside.
    pub fn contains(&self, now: Timestamp) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_ids_refuse_invisible_and_padded_text() {
        for bad in ["", "  ", " x", "x ", "a\u{200B}b", "\u{202E}evil", "\u{FEFF}x", "a\u{2028}b", "x\u{FFFE}", "a\nb"]
        {
            assert!(EventId::new(bad).is_err(), "{bad:?}");
        }
        assert!(EventId::new("IFA-2024/7731 №5").is_ok());
        assert!(Memo::new("Оплата по договору № 17").is_ok());
    }

    #[test]
    fn participant_ids_and_currencies_are_strict() {
        assert!(ParticipantId::new("STB1").is_ok());
        assert!(ParticipantId::new("stb1").is_err());
        assert!(Currency::new("DT").is_ok());
        assert!(Currency::new("D").is_err());
        assert_eq!(Currency::DT.to_string(), "DT");
    }
}
