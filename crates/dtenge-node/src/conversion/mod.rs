//! Conversion between non-cash tenge and DT at the STB–NBK level (SPEC §5,
//! §6), through the NBK core banking system's file exchange.
//!
//! ```text
//!  issue:   STB ─Convert{Issue}─► NBK: Request accepted ─► pacs.009 to the CBS outbox ─► Under review
//!           CBS pacs.002 (ACSC) imported ─► NBK operator approves ─► issue tx ─► Success
//!  redeem:  STB pays the DT to NBK's DA, then Convert{Redeem, funding tx} ─► … same …
//!           ─► approve ─► redeem tx (DT destroyed) ─► Success
//!  refused: CBS RJCT, or the operator rejects ─► Rejected (reason); a redemption's DT go back to the bank
//! ```
//!
//! Invariants: DT are issued only for a request whose CBS confirmation was
//! imported; a confirmation is applied once (importing it again changes
//! nothing); a malformed confirmation file is refused with a report and
//! changes nothing.

use std::path::PathBuf;

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_cbs::{Confirmation, ConfirmationStatus, Direction};
use dtenge_types::{Address, Amount, CbsRef, ParticipantId, Timestamp, TxId};
use serde::{Deserialize, Serialize};

use crate::NodeError;
use crate::status::Status;

mod desk;

/// Which way money converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversionKind {
    /// Non-cash tenge → DT.
    Issue,
    /// DT → non-cash tenge.
    Redeem,
}

/// A bank's conversion request as NBK keeps it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ConversionRequest {
    /// `NBK-REQ-000001`: also the CBS instruction's message id.
    pub id: String,
    /// Which way.
    pub kind: ConversionKind,
    /// The requesting bank.
    pub bank: ParticipantId,
    /// The bank's DA that receives (issue) or gave (redeem) the DT.
    pub bank_address: Address,
    /// How much.
    pub amount: Amount,
    /// When NBK accepted it.
    pub created_at: Timestamp,
    /// Where it stands (SPEC §6).
    pub status: Status,
    /// The CBS confirmation, once imported.
    pub cbs_reference: Option<CbsRef>,
    /// For a redemption: the bank's payment of the DT to NBK.
    pub funding_tx: Option<TxId>,
    /// The issue or redeem transaction, once done.
    pub settled_tx: Option<TxId>,
    /// Who approved or rejected it.
    pub decided_by: Option<String>,
}

/// NBK's link to the core banking system.
#[derive(Debug, Clone)]
pub struct CbsLink {
    /// The exchange folder root (outbox, inbox, processed, rejected).
    pub root: PathBuf,
    /// Run the CBS simulator on each tick (there is no real CBS here).
    pub simulate: bool,
}

/// NBK's BIC.
pub const NBK_BIC: &str = "NBRKKZKX";
/// Who decided a request the CBS rejected.
const CBS_DECIDER: &str = "CBS";

/// What a CBS confirmation is to NBK's conversion requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// It answers its request, which awaits it: apply it.
    Apply,
    /// The very confirmation already applied to its request (the file came
    /// again, or stayed in the inbox across a crash): nothing to do.
    AlreadyApplied,
    /// It answers no request of NBK's as it stands: why, for the report.
    Mismatch(String),
}

/// Whether `confirmation` answers `request` (the request its instruction id
/// names, if NBK has one): the bank, the direction and the amount must be
/// the request's, and the request must still await the CBS. Pure.
pub fn match_confirmation(request: Option<&ConversionRequest>, confirmation: &Confirmation) -> Match {
    let id = &confirmation.instruction_id;
    let Some(request) = request else {
        return Match::Mismatch(format!("no conversion request {id} exists at NBK: nothing was instructed under it"));
    };
    let bank_bic = bic_of(&request.bank);
    if confirmation.bank_bic != bank_bic {
        return Match::Mismatch(format!(
            "the confirmation names bank {}, but request {id} is {}'s (BIC {bank_bic})",
            confirmation.bank_bic, request.bank
        ));
    }
    let direction = match request.kind {
        ConversionKind::Issue => Direction::Issue,
        ConversionKind::Redeem => Direction::Redeem,
    };
    if confirmation.direction != direction {
        return Match::Mismatch(format!(
            "the confirmation is for {} (\"{}\"), but request {id} is {} (\"{}\")",
            direction_name(confirmation.direction),
            confirmation.direction.remittance_text(),
            direction_name(direction),
            direction.remittance_text()
        ));
    }
    if confirmation.amount != request.amount {
        return Match::Mismatch(format!(
            "the confirmation names {} KZT, but request {id} is for {} KZT",
            confirmation.amount, request.amount
        ));
    }
    let same_answer = match (&confirmation.status, &request.status) {
        (ConfirmationStatus::Accepted { cbs_reference }, _) => request.cbs_reference.as_ref() == Some(cbs_reference),
        (ConfirmationStatus::Rejected { reason }, Status::Rejected { reason: recorded }) => {
            request.decided_by.as_deref() == Some(CBS_DECIDER) && recorded.text == format!("CBS rejected: {reason}")
        }
        (ConfirmationStatus::Rejected { .. }, _) => false,
    };
    if same_answer {
        return Match::AlreadyApplied;
    }
    if let Some(reference) = &request.cbs_reference {
        return Match::Mismatch(format!(
            "request {id} is already confirmed by the CBS under reference {reference}: this is a second, \
             different confirmation"
        ));
    }
    match &request.status {
        Status::RequestAccepted | Status::UnderReview => Match::Apply,
        Status::Success => Match::Mismatch(format!("request {id} is already settled")),
        Status::Rejected { reason } => Match::Mismatch(format!("request {id} was already rejected: {reason}")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReturnMade {
    Committed(TxId),
    InFlight,
    None,
}

/// The memo of the payment that returns a rejected redemption's DT.
fn return_memo(request: &str) -> String {
    format!("return of {request}")
}

fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Issue => "an issue",
        Direction::Redeem => "a redemption",
    }
}

/// A participant's BIC-form identifier for CBS files: the first four
/// characters of its id, padded with `X`, then `KZKX`.
pub fn bic_of(participant: &ParticipantId) -> String {
    let mut head: String = participant.as_str().chars().filter(char::is_ascii_alphanumeric).take(4).collect();
    while head.len() < 4 {
        head.push('X');
    }
    format!("{head}KZKX")
}

/// A conversion's amount: positive, and one a CBS file carries.
fn check_conversion_amount(amount: Amount) -> Result<(), NodeError> {
    dtenge_cbs::check_amount(amount).map_err(|e| match e {
        dtenge_cbs::CbsError::Malformed { what } => NodeError::Invalid(format!("conversion: {what}")),
        other => NodeError::Invalid(format!("conversion: {other}")),
    })
}
