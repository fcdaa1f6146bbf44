//! The confirmation file: ISO 20022 pacs.002.001.10, written by the CBS, read by NBK.
//!
//! Read: `OrgnlGrpInfAndSts/OrgnlMsgId` and `TxInfAndSts/OrgnlEndToEndId`
//! (both the instruction id), `TxSts` (`ACSC` or `RJCT`; anything else — a
//! pending status included — is refused, since NBK acts on final answers only),
//! for `ACSC` the `AccptncDtTm` and the CBS reference `AcctSvcrRef`, for `RJCT`
//! the reason in `StsRsnInf/AddtlInf` (or its `Rsn` code), and in `OrgnlTxRef`
//! the amount and the two agents, one of which must be NBK: the other is the bank.

use dtenge_types::CbsRef;

use crate::model::{
    Confirmation, ConfirmationStatus, Direction, NBK_BIC, check_bic, check_instruction_id, malformed, shorten,
};
use crate::time::{format_astana, parse_iso_datetime};
use crate::xml::{Document, esc};
use crate::{CbsError, PACS_002_NAMESPACE};

/// Longest rejection reason kept, in characters; longer ones are cut.
pub const MAX_REASON_CHARS: usize = 1000;
/// ISO `AddtlInf` is `Max105Text`; a longer reason is written in several.
const ADDITIONAL_INFO_CHARS: usize = 105;

const TX: &str = "FIToFIPmtStsRpt/TxInfAndSts";

/// The confirmation as pacs.002.001.10 XML, as the CBS (or the simulator)
/// writes it. Its `direction` places the bank and NBK as debtor and creditor
/// in `OrgnlTxRef`; `message_id` is the report's own `MsgId`. `GrpHdr/CreDtTm`
/// and, when accepted, `AccptncDtTm` are `booked_at`.
pub fn confirmation_xml(c: &Confirmation, message_id: &str) -> String {
    let booked_at = format_astana(c.booked_at);
    let status = match &c.status {
        ConfirmationStatus::Accepted { cbs_reference } => format!(
            "      <TxSts>ACSC</TxSts>
      <AccptncDtTm>{booked_at}</AccptncDtTm>
      <AcctSvcrRef>{}</AcctSvcrRef>
",
            esc(cbs_reference.as_str())
        ),
        ConfirmationStatus::Rejected { reason } => {
            let chars: Vec<char> = reason.chars().collect();
            let info: String = chars
                .chunks(ADDITIONAL_INFO_CHARS)
                .map(|chunk| format!("        <AddtlInf>{}</AddtlInf>\n", esc(chunk.iter().collect::<String>())))
                .collect();
            format!(
                "      <TxSts>RJCT</TxSts>
      <StsRsnInf>
        <Rsn>
          <Cd>NARR</Cd>
        </Rsn>
{info}      </StsRsnInf>
"
            )
        }
    };
    let bank = esc(&c.bank_bic);
    let (debtor, creditor) = match c.direction {
        Direction::Issue => (bank.as_ref(), NBK_BIC),
        Direction::Redeem => (NBK_BIC, bank.as_ref()),
    };
    let id = esc(&c.instruction_id);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{PACS_002_NAMESPACE}">
  <FIToFIPmtStsRpt>
    <GrpHdr>
      <MsgId>{message_id}</MsgId>
      <CreDtTm>{booked_at}</CreDtTm>
    </GrpHdr>
    <OrgnlGrpInfAndSts>
      <OrgnlMsgId>{id}</OrgnlMsgId>
      <OrgnlMsgNmId>pacs.009.001.08</OrgnlMsgNmId>
    </OrgnlGrpInfAndSts>
    <TxInfAndSts>
      <OrgnlEndToEndId>{id}</OrgnlEndToEndId>
{status}      <OrgnlTxRef>
        <IntrBkSttlmAmt Ccy="KZT">{amount}</IntrBkSttlmAmt>
        <Dbtr>
          <Agt>
            <FinInstnId>
              <BICFI>{debtor}</BICFI>
            </FinInstnId>
          </Agt>
        </Dbtr>
        <Cdtr>
          <Agt>
            <FinInstnId>
              <BICFI>{creditor}</BICFI>
            </FinInstnId>
          </Agt>
        </Cdtr>
      </OrgnlTxRef>
    </TxInfAndSts>
  </FIToFIPmtStsRpt>
</Document>
"#,
        message_id = esc(message_id),
        amount = c.amount.to_plain(),
    )
}

/// Reads a pacs.002.001.10 confirmation. Pure and total: any input gives a
/// value or a [`CbsError::Malformed`] that says exactly what is wrong.
pub fn parse_confirmation(xml: &[u8]) -> Result<Confirmation, CbsError> {
    let document = Document::parse(xml, PACS_002_NAMESPACE, "a pacs.002.001.10 confirmation")?;
    document.text("FIToFIPmtStsRpt/GrpHdr/MsgId")?;
    let created_at = parse_iso_datetime(document.text("FIToFIPmtStsRpt/GrpHdr/CreDtTm")?)
        .map_err(|why| malformed(format!("GrpHdr/CreDtTm: {why}")))?;
    let original_message = document.text("FIToFIPmtStsRpt/OrgnlGrpInfAndSts/OrgnlMsgId")?;
    if let Some(name) = document.optional("FIToFIPmtStsRpt/OrgnlGrpInfAndSts/OrgnlMsgNmId")? {
        let name = name.text()?;
        if !name.starts_with("pacs.009.") {
            return Err(malformed(format!("OrgnlMsgNmId {:?}: this answers no pacs.009 instruction", shorten(name))));
        }
    }
    document.one(TX)?;
    let instruction_id = document.text(&format!("{TX}/OrgnlEndToEndId"))?;
    check_instruction_id("OrgnlEndToEndId", instruction_id)?;
    if original_message != instruction_id {
        return Err(malformed(format!(
            "OrgnlMsgId {:?} differs from OrgnlEndToEndId {instruction_id:?}",
            shorten(original_message)
        )));
    }
    let amount = document.kzt_amount(&format!("{TX}/OrgnlTxRef/IntrBkSttlmAmt"))?;
    let (bank_bic, direction) = bank_and_direction(&document)?;
    let (status, booked_at) = match document.text(&format!("{TX}/TxSts"))? {
        "ACSC" => {
            let accepted_at = parse_iso_datetime(document.text(&format!("{TX}/AccptncDtTm"))?)
                .map_err(|why| malformed(format!("AccptncDtTm: {why}")))?;
            let reference = document.text(&format!("{TX}/AcctSvcrRef"))?;
            let cbs_reference = CbsRef::new(reference).map_err(|e| malformed(format!("AcctSvcrRef: {e}")))?;
            (ConfirmationStatus::Accepted { cbs_reference }, accepted_at)
        }
        "RJCT" => (ConfirmationStatus::Rejected { reason: rejection_reason(&document)? }, created_at),
        other => {
            return Err(malformed(format!(
                "TxSts {:?} is not ACSC (accepted, settled) or RJCT (rejected); only final statuses are accepted",
                shorten(other)
            )));
        }
    };
    Ok(Confirmation { instruction_id: instruction_id.to_owned(), status, amount, bank_bic, direction, booked_at })
}

/// The side of `OrgnlTxRef` that is not NBK, and the direction its side gives:
/// a debtor bank paid NBK (issue), a creditor bank was paid (redemption).
fn bank_and_direction(document: &Document) -> Result<(String, Direction), CbsError> {
    let debtor = document.text(&format!("{TX}/OrgnlTxRef/Dbtr/Agt/FinInstnId/BICFI"))?;
    let creditor = document.text(&format!("{TX}/OrgnlTxRef/Cdtr/Agt/FinInstnId/BICFI"))?;
    let (bank, direction) = match (debtor == NBK_BIC, creditor == NBK_BIC) {
        (true, false) => (creditor, Direction::Redeem),
        (false, true) => (debtor, Direction::Issue),
        (true, true) => return Err(malformed("OrgnlTxRef names NBK as both debtor and creditor")),
        (false, false) => {
            return Err(malformed(format!(
                "OrgnlTxRef names neither debtor {:?} nor creditor {:?} as NBK ({NBK_BIC})",
                shorten(debtor),
                shorten(creditor)
            )));
        }
    };
    check_bic("OrgnlTxRef bank BICFI", bank)?;
    Ok((bank.to_owned(), direction))
}

/// `AddtlInf` texts joined, whitespace collapsed, controls dropped, cut to
/// [`MAX_REASON_CHARS`]; else the reason code; else an error.
fn rejection_reason(document: &Document) -> Result<String, CbsError> {
    let joined: String =
        document.all(&format!("{TX}/StsRsnInf/AddtlInf")).into_iter().map(|e| e.text.as_str()).collect();
    let mut reason: String = joined
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REASON_CHARS)
        .collect();
    if reason.is_empty() {
        let code = document
            .all(&format!("{TX}/StsRsnInf/Rsn/Cd"))
            .into_iter()
            .chain(document.all(&format!("{TX}/StsRsnInf/Rsn/Prtry")))
            .map(|e| e.text.trim())
            .find(|code| !code.is_empty())
            .ok_or_else(|| malformed("RJCT without a reason: expected StsRsnInf/AddtlInf or StsRsnInf/Rsn"))?;
        reason = format!("reason code {}", shorten(code));
    }
    Ok(reason)
}
