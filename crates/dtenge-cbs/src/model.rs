//! What crosses the CBS boundary: instructions (NBK → CBS) and confirmations
//! (CBS → NBK), with the checks every one of them passes before it is written
//! or after it is read.

use dtenge_types::{Amount, CbsRef, ParticipantId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::CbsError;
use crate::time::MAX_TIMESTAMP_MS;

/// The BIC of the National Bank of Kazakhstan, the other side of every instruction.
pub const NBK_BIC: &str = "NBRKKZKX";
/// Longest instruction id: ISO 20022 `Max35Text`.
pub const MAX_INSTRUCTION_ID_LEN: usize = 35;
/// The largest amount a CBS file carries: 17 whole-tenge digits and two of
/// tiyn (99 999 999 999 999 999,99). A conversion above it is refused when it
/// is requested, never written into a file the other side cannot read.
pub const MAX_AMOUNT: Amount = Amount::from_tiyn(9_999_999_999_999_999_999);

/// Which way the tenge move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// The CBS debits the bank's correspondent account; NBK then issues DT.
    Issue,
    /// The CBS credits the bank's correspondent account; NBK then destroys DT.
    Redeem,
}

impl Direction {
    /// The `RmtInf/Ustrd` text that carries the direction in a pacs.009.
    pub const fn remittance_text(self) -> &'static str {
        match self {
            Direction::Issue => "DT issue",
            Direction::Redeem => "DT redemption",
        }
    }
}

/// NBK asks the CBS to move tenge between a bank's correspondent account and NBK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction {
    /// `[A-Za-z0-9-]{1,35}`, e.g. `NBK-REQ-000017`: the ISO MsgId and EndToEndId,
    /// and the file name in the outbox.
    pub id: String,
    /// Issue or redeem.
    pub direction: Direction,
    /// The bank on the platform.
    pub bank: ParticipantId,
    /// The bank's BIC (8 or 11 characters), e.g. `HSBKKZKX`.
    pub bank_bic: String,
    /// How much, in tiyn; never zero.
    pub amount: Amount,
    /// When NBK created the instruction.
    pub created_at: Timestamp,
}

impl Instruction {
    /// Checks every field: the id and BIC formats, a BIC other than NBK's,
    /// a positive amount and a time with a four-digit year.
    pub fn validate(&self) -> Result<(), CbsError> {
        check_instruction_id("instruction id", &self.id)?;
        check_bic("bank BIC", &self.bank_bic)?;
        if self.bank_bic.starts_with(NBK_BIC) {
            return Err(malformed(format!("bank BIC {} is NBK's own; name the second-tier bank", self.bank_bic)));
        }
        check_amount(self.amount)?;
        if self.created_at.millis() > MAX_TIMESTAMP_MS {
            return Err(malformed(format!("created_at {} ms is after the year 9999", self.created_at.millis())));
        }
        Ok(())
    }
}

/// A positive amount that a CBS file can carry (at most [`MAX_AMOUNT`]).
pub fn check_amount(amount: Amount) -> Result<(), CbsError> {
    if amount.is_zero() {
        return Err(malformed("amount must be more than zero"));
    }
    if amount > MAX_AMOUNT {
        return Err(malformed(format!(
            "amount {amount} is more than {MAX_AMOUNT}, the largest amount a CBS file carries"
        )));
    }
    Ok(())
}

/// What the CBS did with an instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfirmationStatus {
    /// Booked and settled (ISO `ACSC`); the CBS's own reference for the booking.
    Accepted {
        /// `TxInfAndSts/AcctSvcrRef`.
        cbs_reference: CbsRef,
    },
    /// Refused (ISO `RJCT`); nothing was booked.
    Rejected {
        /// `StsRsnInf/AddtlInf` (or the reason code when there is no text).
        reason: String,
    },
}

/// The CBS's answer to one instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The instruction answered (`OrgnlEndToEndId`).
    pub instruction_id: String,
    /// Accepted or rejected.
    pub status: ConfirmationStatus,
    /// The amount the CBS saw (`OrgnlTxRef/IntrBkSttlmAmt`); the caller checks
    /// it against its instruction.
    pub amount: Amount,
    /// The bank's BIC (the side of `OrgnlTxRef` that is not NBK).
    pub bank_bic: String,
    /// Which way the tenge moved: the bank is the debtor of an issue and the
    /// creditor of a redemption.
    pub direction: Direction,
    /// `AccptncDtTm` when accepted; the report's `CreDtTm` otherwise.
    pub booked_at: Timestamp,
}

pub(crate) fn malformed(what: impl Into<String>) -> CbsError {
    CbsError::Malformed { what: what.into() }
}

/// `[A-Za-z0-9-]{1,35}`: safe as a file name and as an ISO `Max35Text`.
pub fn check_instruction_id(what: &str, id: &str) -> Result<(), CbsError> {
    let valid = !id.is_empty()
        && id.len() <= MAX_INSTRUCTION_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(malformed(format!("{what} {:?} must be 1-35 characters of A-Z, a-z, 0-9 or '-'", shorten(id))))
    }
}

/// ISO 9362 BIC as ISO 20022 `BICFIDec2014Identifier` has it:
/// `[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?`.
pub fn check_bic(what: &str, bic: &str) -> Result<(), CbsError> {
    let bytes = bic.as_bytes();
    let upper_alnum = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    let valid = (bytes.len() == 8 || bytes.len() == 11)
        && bytes[..4].iter().all(upper_alnum)
        && bytes[4..6].iter().all(u8::is_ascii_uppercase)
        && bytes[6..].iter().all(upper_alnum);
    if valid {
        Ok(())
    } else {
        Err(malformed(format!(
            "{what} {:?} is not a BIC (8 or 11 upper-case letters and digits, letters 5-6 the country)",
            shorten(bic)
        )))
    }
}

/// At most 60 characters of untrusted text, for error messages.
pub(crate) fn shorten(text: &str) -> String {
    let mut cut: String = text.chars().take(60).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}
