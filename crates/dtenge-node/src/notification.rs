//! What a DA's holder is told ([`Notification`]): a kind with its
//! particulars ([`Message`]), so each page words it in its reader's language
//! and a program reads the kind, never the words.

use std::io::{Read, Write};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_types::{Address, Amount, Currency, EventId, OrderRef, ParticipantId, Timestamp, Token, Transaction, TxId};

use crate::status::words_or_marked;

/// Something a DA holder is told (SPEC §5: incoming funds and holds).
///
/// Stored encoding, so that every notification written before kinds were
/// stored reads as it was written:
///
/// ```text
///   borsh(at) ‖ message ‖ borsh(tx)
///   message, words only:  borsh(text)                       (a borsh string: u32 length, bytes)
///   message, with a kind: 0xFFFF_0001 u32 ‖ borsh(Message)
/// ```
///
/// A text's length is never near `0xFFFF_0000` (records are far smaller),
/// so the first four bytes tell the two forms apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// When.
    pub at: Timestamp,
    /// What happened.
    pub message: Message,
    /// The transaction, if any.
    pub tx: Option<TxId>,
}

/// What happened, by kind (the API's `kind`), with its particulars
/// ([`Message::params`]); its `Display` is the English words.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Message {
    /// Funds arrived (change back to the payer is not told).
    Incoming {
        /// How much.
        amount: Amount,
        /// In what.
        currency: Currency,
        /// The transaction's command (`transfer`, `issue`, …).
        command: String,
    },
    /// Funds are held for this DA until an oracle event occurs.
    HeldForYou {
        /// How much.
        amount: Amount,
        /// The event that releases them.
        event: EventId,
    },
    /// An oracle event this DA takes part in was registered.
    EventRegistered {
        /// The event.
        event: EventId,
    },
    /// The waterfall topped the DA up from its linked bank account.
    ToppedUp {
        /// How much.
        amount: Amount,
        /// The linked account.
        bank_account: String,
    },
    /// The reverse waterfall moved what exceeded the DA's cap to its linked
    /// bank account.
    SweptOverCap {
        /// How much.
        amount: Amount,
        /// The linked account.
        bank_account: String,
    },
    /// An authority froze the DA.
    Frozen {
        /// The order.
        order: OrderRef,
        /// The node it came through.
        by: ParticipantId,
        /// The order's reason.
        reason: String,
    },
    /// An authority arrested an amount on the DA.
    Arrested {
        /// How much.
        amount: Amount,
        /// The order.
        order: OrderRef,
        /// The node it came through.
        by: ParticipantId,
        /// The order's reason.
        reason: String,
    },
    /// An authority ordered a collection from the DA.
    CollectionOrdered {
        /// At most this much.
        amount: Amount,
        /// The order.
        order: OrderRef,
        /// The node it came through.
        by: ParticipantId,
        /// The order's reason.
        reason: String,
    },
    /// An earlier freeze or arrest was lifted.
    OrderLifted {
        /// The order lifted.
        order: OrderRef,
        /// The node the lift came through.
        by: ParticipantId,
        /// The lifting order's reason.
        reason: String,
    },
    /// The DA has a new key after re-identification; the old one is revoked.
    Rekeyed {
        /// The DA's new address.
        address: Address,
    },
    /// Words only: a notification written before kinds were stored.
    Words(String),
}

/// The first four bytes of a message with a kind: the top half no text
/// length reaches, the bottom half the form's version.
const KIND_MARKER: u32 = 0xFFFF_0001;

impl Message {
    /// `token` arrived with `tx`.
    pub fn incoming(token: &Token, tx: &Transaction) -> Message {
        Message::Incoming {
            amount: token.amount,
            currency: token.currency,
            command: tx.body.command.name().to_string(),
        }
    }

    /// Its particulars by name, amounts in tiyn (`amount_tiyn`), as the
    /// API names them. Words only have none.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        match self {
            Message::Incoming { amount, currency, command } => {
                vec![
                    ("amount_tiyn", amount.tiyn().to_string()),
                    ("currency", currency.to_string()),
                    ("command", command.clone()),
                ]
            }
            Message::HeldForYou { amount, event } => {
                vec![("amount_tiyn", amount.tiyn().to_string()), ("event", event.to_string())]
            }
            Message::EventRegistered { event } => vec![("event", event.to_string())],
            Message::ToppedUp { amount, bank_account } | Message::SweptOverCap { amount, bank_account } => {
                vec![("amount_tiyn", amount.tiyn().to_string()), ("bank_account", bank_account.clone())]
            }
            Message::Frozen { order, by, reason } | Message::OrderLifted { order, by, reason } => {
                vec![("order", order.to_string()), ("by", by.to_string()), ("reason", reason.clone())]
            }
            Message::Arrested { amount, order, by, reason }
            | Message::CollectionOrdered { amount, order, by, reason } => {
                vec![
                    ("amount_tiyn", amount.tiyn().to_string()),
                    ("order", order.to_string()),
                    ("by", by.to_string()),
                    ("reason", reason.clone()),
                ]
            }
            Message::Rekeyed { address } => vec![("address", address.to_string())],
            Message::Words(_) => Vec::new(),
        }
    }
}

/// The English words, as the node wrote them before kinds were stored.
impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Incoming { amount, currency, command } => write!(f, "Incoming {amount} {currency} ({command})"),
            Message::HeldForYou { amount, event } => write!(f, "{amount} DT held for you until event {event} occurs"),
            Message::EventRegistered { event } => write!(f, "Event {event} registered on the oracle"),
            Message::ToppedUp { amount, bank_account } => {
                write!(f, "{amount} DT topped up from bank account {bank_account} (waterfall)")
            }
            Message::SweptOverCap { amount, bank_account } => {
                write!(f, "{amount} DT above your balance cap moved to bank account {bank_account}")
            }
            Message::Frozen { order, by, reason } => write!(f, "Your DA is frozen by order {order} of {by}: {reason}"),
            Message::Arrested { amount, order, by, reason } => {
                write!(f, "{amount} DT arrested by order {order} of {by}: {reason}")
            }
            Message::CollectionOrdered { amount, order, by, reason } => {
                write!(f, "Collection of up to {amount} DT by order {order} of {by}: {reason}")
            }
            Message::OrderLifted { order, by, reason } => write!(f, "Order {order} lifted by {by}: {reason}"),
            Message::Rekeyed { address } => {
                write!(f, "New key {address} issued after re-identification; the old key is revoked")
            }
            Message::Words(text) => f.write_str(text),
        }
    }
}

impl BorshSerialize for Notification {
    fn serialize<W: Write>(&self, writer: &mut W) -> std::io::Result<()> {
        self.at.serialize(writer)?;
        match &self.message {
            Message::Words(text) => text.serialize(writer)?,
            message => {
                KIND_MARKER.serialize(writer)?;
                message.serialize(writer)?;
            }
        }
        self.tx.serialize(writer)
    }
}

impl BorshDeserialize for Notification {
    fn deserialize_reader<R: Read>(reader: &mut R) -> std::io::Result<Self> {
        let at = Timestamp::deserialize_reader(reader)?;
        let first = u32::deserialize_reader(reader)?;
        let message = match words_or_marked(first, KIND_MARKER, reader, "a notification")? {
            Some(words) => Message::Words(words),
            // Words are stored as a plain string; this form of them is not
            // one this release writes.
            None => match Message::deserialize_reader(reader)? {
                Message::Words(_) => return Err(invalid("a notification's words in the form of a kind".into())),
                message => message,
            },
        };
        let tx = Option::<TxId>::deserialize_reader(reader)?;
        Ok(Notification { at, message, tx })
    }
}

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn decoded(bytes: &[u8]) -> std::io::Result<Notification> {
        borsh::from_slice(bytes)
    }

    /// How release 9e7a3dd and every format before kinds wrote one.
    #[derive(BorshSerialize)]
    struct Before {
        at: Timestamp,
        text: String,
        tx: Option<TxId>,
    }

    #[test]
    fn a_notification_written_as_words_reads_as_those_words_and_is_written_back_the_same() {
        let before = Before { at: Timestamp(7), text: "Incoming 1 000,00 KZT (transfer)".into(), tx: None };
        let bytes = borsh::to_vec(&before).unwrap();
        let read = decoded(&bytes).unwrap();
        assert_eq!(read.message, Message::Words(before.text.clone()));
        assert_eq!(read.message.to_string(), before.text);
        assert_eq!(borsh::to_vec(&read).unwrap(), bytes);
    }

    #[test]
    fn a_notification_with_a_kind_round_trips_and_words_it_as_before() {
        let message =
            Message::HeldForYou { amount: Amount::from_tenge(5).unwrap(), event: EventId::new("delivery-1").unwrap() };
        let n = Notification {
            at: Timestamp(9),
            message: message.clone(),
            tx: Some(TxId(dtenge_crypto::hash(b"notification-test", &[b"tx"]))),
        };
        let bytes = borsh::to_vec(&n).unwrap();
        assert_eq!(bytes[8..12], KIND_MARKER.to_le_bytes());
        assert_eq!(decoded(&bytes).unwrap(), n);
        assert_eq!(message.to_string(), "5,00 DT held for you until event delivery-1 occurs");
        assert_eq!(message.params(), vec![("amount_tiyn", "500".to_string()), ("event", "delivery-1".to_string())]);
    }

    #[test]
    fn a_later_form_and_damaged_words_are_refused_with_what_they_are() {
        let mut later = borsh::to_vec(&Timestamp(1)).unwrap();
        later.extend(0xFFFF_0002u32.to_le_bytes());
        let e = decoded(&later).unwrap_err().to_string();
        assert!(e.contains("form 2") && e.contains("form 1"), "{e}");

        let mut coded_words = borsh::to_vec(&Timestamp(1)).unwrap();
        coded_words.extend(KIND_MARKER.to_le_bytes());
        coded_words.extend(borsh::to_vec(&Message::Words("x".into())).unwrap());
        coded_words.push(0);
        assert!(decoded(&coded_words).unwrap_err().to_string().contains("form of a kind"));

        let mut short = borsh::to_vec(&Timestamp(1)).unwrap();
        short.extend(1_000u32.to_le_bytes());
        short.extend(b"abc");
        assert!(decoded(&short).unwrap_err().to_string().contains("cut short"));
    }
}
