//! Where a request or transaction stands, as users see it: the one word the
//! node's records, its conversion requests and the API share; and why it
//! was refused ([`Reason`]).

use std::io::{Read, Write};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_types::TxId;

use crate::{Refusal, RefusalCode};

/// Status of a request or transaction as users see it (SPEC §6).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Status {
    /// Received and recorded.
    RequestAccepted,
    /// Waiting for NBK approval, a checker, or the notary.
    UnderReview,
    /// Done.
    Success,
    /// Refused, with the reason.
    Rejected {
        /// Why.
        reason: Reason,
    },
}

/// Why something was refused: the stable code of the refusal, when the
/// platform made it (the same code the API answers an immediate refusal
/// with), and the words for people.
///
/// Stored encoding, so that every record written before codes existed
/// reads as it was written:
///
/// ```text
///   no code:  borsh(text)                                  (a borsh string: u32 length, bytes)
///   coded:    0xFFFF_0001 u32 ‖ borsh(RefusalCode) ‖ borsh(text)
/// ```
///
/// A text's length is never near `0xFFFF_0000` (records are far smaller),
/// so the first four bytes tell the two forms apart.
#[derive(Clone, PartialEq, Eq)]
pub struct Reason {
    /// The refusal's stable code; `None` for a record written before codes
    /// were stored (a payment's before 2026-12-07; a conversion refused by
    /// a person or the core banking system before 2026-12-08).
    pub code: Option<RefusalCode>,
    /// What happened, for people.
    pub text: String,
}

/// The first four bytes of a coded [`Reason`]: the top half no text length
/// reaches, the bottom half the form's version.
const CODED_MARKER: u32 = 0xFFFF_0001;

impl Reason {
    /// A refusal the platform made, under its stable code.
    pub fn coded(code: RefusalCode, text: impl Into<String>) -> Reason {
        Reason { code: Some(code), text: text.into() }
    }

    /// Words without a code.
    pub fn text(text: impl Into<String>) -> Reason {
        Reason { code: None, text: text.into() }
    }
}

/// The words quoted, after the code when there is one (`payee_refused: "…"`):
/// a reason without a code reads as the string it was before codes.
impl std::fmt::Debug for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(code) = self.code {
            write!(f, "{code}: ")?;
        }
        write!(f, "{:?}", self.text)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// A refusal kept as a reason: its code and its words.
impl From<Refusal> for Reason {
    fn from(refusal: Refusal) -> Reason {
        Reason::coded(refusal.code, refusal.message)
    }
}

impl From<String> for Reason {
    fn from(text: String) -> Reason {
        Reason::text(text)
    }
}

impl From<&str> for Reason {
    fn from(text: &str) -> Reason {
        Reason::text(text)
    }
}

impl BorshSerialize for Reason {
    fn serialize<W: Write>(&self, writer: &mut W) -> std::io::Result<()> {
        match self.code {
            None => self.text.serialize(writer),
            Some(code) => {
                CODED_MARKER.serialize(writer)?;
                code.serialize(writer)?;
                self.text.serialize(writer)
            }
        }
    }
}

impl BorshDeserialize for Reason {
    fn deserialize_reader<R: Read>(reader: &mut R) -> std::io::Result<Self> {
        let first = u32::deserialize_reader(reader)?;
        match words_or_marked(first, CODED_MARKER, reader, "a reason")? {
            Some(text) => Ok(Reason { code: None, text }),
            None => {
                let code = RefusalCode::deserialize_reader(reader)?;
                Ok(Reason { code: Some(code), text: String::deserialize_reader(reader)? })
            }
        }
    }
}

/// Reads a value stored either as plain words (a borsh string, as before
/// kinds or codes were stored) or behind `marker`, whose top half no words'
/// length reaches; `first` is its first four bytes, already read. The words,
/// or `None` at `marker` (the caller reads the rest); an error naming
/// `what` for a marker of a form this release does not read, words cut
/// short or not UTF-8. Words are read only as far as the bytes go, so a
/// damaged length allocates nothing.
pub(crate) fn words_or_marked<R: Read>(
    first: u32,
    marker: u32,
    reader: &mut R,
    what: &str,
) -> std::io::Result<Option<String>> {
    if first == marker {
        return Ok(None);
    }
    if first & 0xFFFF_0000 == 0xFFFF_0000 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{what} in form {} (this release reads form {})", first & 0xFFFF, marker & 0xFFFF),
        ));
    }
    let mut bytes = Vec::new();
    reader.take(u64::from(first)).read_to_end(&mut bytes)?;
    if usize::try_from(first).ok() != Some(bytes.len()) {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("{what}'s words are cut short")));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{what}'s words are not UTF-8")))
}

/// What became of an operation's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOutcome {
    /// The transaction.
    pub tx: TxId,
    /// Where it stands (Success once committed).
    pub status: Status,
    /// The notary's commit position, once committed.
    pub notary_seq: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(bytes: &[u8]) -> std::io::Result<Reason> {
        borsh::from_slice(bytes)
    }

    #[test]
    fn words_stored_before_codes_read_unchanged_and_are_written_the_same_way() {
        let old = borsh::to_vec(&"the DA is closed".to_string()).unwrap_or_default();
        let reason = decoded(&old).expect("reads");
        assert_eq!(reason, Reason::text("the DA is closed"));
        assert_eq!(borsh::to_vec(&reason).unwrap_or_default(), old, "a reason without a code is a borsh string");
        assert_eq!(decoded(&borsh::to_vec(&String::new()).unwrap_or_default()).ok(), Some(Reason::text("")));
    }

    #[test]
    fn a_coded_reason_keeps_its_code() {
        for code in [RefusalCode::PayeeRefused, RefusalCode::Rule(802), RefusalCode::Expired] {
            let reason = Reason::coded(code, "why");
            let bytes = borsh::to_vec(&reason).unwrap_or_default();
            assert_eq!(bytes[..4], CODED_MARKER.to_le_bytes());
            assert_eq!(decoded(&bytes).ok(), Some(reason));
        }
        let status = Status::Rejected { reason: Reason::coded(RefusalCode::NotaryRejected, "spent") };
        let back: Status = borsh::from_slice(&borsh::to_vec(&status).unwrap_or_default()).expect("reads");
        assert_eq!(back, status);
    }

    #[test]
    fn damaged_or_unknown_forms_are_refused_not_misread() {
        let mut later = borsh::to_vec(&Reason::coded(RefusalCode::Busy, "x")).unwrap_or_default();
        later[..4].copy_from_slice(&0xFFFF_0002u32.to_le_bytes());
        let e = decoded(&later).expect_err("a later form");
        assert!(e.to_string().contains("form 2"), "{e}");
        // A length past the bytes there are: refused, nothing allocated for it.
        let mut cut = 1_000_000u32.to_le_bytes().to_vec();
        cut.extend_from_slice(b"short");
        assert!(decoded(&cut).is_err());
        let mut not_utf8 = 2u32.to_le_bytes().to_vec();
        not_utf8.extend_from_slice(&[0xC3, 0x28]);
        assert!(decoded(&not_utf8).is_err());
        assert!(decoded(&[1, 0]).is_err(), "fewer than four bytes");
    }
}
