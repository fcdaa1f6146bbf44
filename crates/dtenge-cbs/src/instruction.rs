//! The instruction file: ISO 20022 pacs.009.001.08, written by NBK, read by the CBS.
//!
//! One message carries one transfer; `MsgId`, `InstrId` and `EndToEndId` are
//! all the instruction id. For an issue the bank is the debtor and NBK the
//! creditor; for a redemption the reverse. The bank's platform participant id
//! rides in its `FinInstnId/Othr/Id` (scheme `DTENGE`) so the file alone says
//! whose DT to issue or destroy.

use dtenge_types::ParticipantId;

use crate::model::{Direction, Instruction, NBK_BIC, check_bic, check_instruction_id, malformed, shorten};
use crate::time::{format_astana, parse_iso_datetime};
use crate::xml::{Document, esc};
use crate::{CbsError, PACS_009_NAMESPACE};

/// The proprietary scheme under which the bank's participant id is given.
pub const PARTICIPANT_SCHEME: &str = "DTENGE";

const TX: &str = "FICdtTrf/CdtTrfTxInf";

/// The instruction as pacs.009.001.08 XML. Pure and deterministic: the same
/// instruction always gives the same bytes.
pub fn instruction_xml(i: &Instruction) -> String {
    let bank = financial_institution(&i.bank_bic, Some(&i.bank));
    let nbk = financial_institution(NBK_BIC, None);
    let (debtor, creditor) = match i.direction {
        Direction::Issue => (bank, nbk),
        Direction::Redeem => (nbk, bank),
    };
    let id = esc(&i.id);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{PACS_009_NAMESPACE}">
  <FICdtTrf>
    <GrpHdr>
      <MsgId>{id}</MsgId>
      <CreDtTm>{created}</CreDtTm>
      <NbOfTxs>1</NbOfTxs>
      <SttlmInf>
        <SttlmMtd>INDA</SttlmMtd>
      </SttlmInf>
    </GrpHdr>
    <CdtTrfTxInf>
      <PmtId>
        <InstrId>{id}</InstrId>
        <EndToEndId>{id}</EndToEndId>
      </PmtId>
      <IntrBkSttlmAmt Ccy="KZT">{amount}</IntrBkSttlmAmt>
      <Dbtr>
{debtor}      </Dbtr>
      <Cdtr>
{creditor}      </Cdtr>
      <RmtInf>
        <Ustrd>{purpose}</Ustrd>
      </RmtInf>
    </CdtTrfTxInf>
  </FICdtTrf>
</Document>
"#,
        created = format_astana(i.created_at),
        amount = i.amount.to_plain(),
        purpose = i.direction.remittance_text(),
    )
}

fn financial_institution(bic: &str, participant: Option<&ParticipantId>) -> String {
    let other = participant.map_or_else(String::new, |participant| {
        format!(
            "          <Othr>
            <Id>{}</Id>
            <SchmeNm>
              <Prtry>{PARTICIPANT_SCHEME}</Prtry>
            </SchmeNm>
          </Othr>
",
            esc(participant.as_str())
        )
    });
    format!(
        "        <FinInstnId>
          <BICFI>{}</BICFI>
{other}        </FinInstnId>
",
        esc(bic)
    )
}

/// Reads a pacs.009.001.08 instruction back; the result passes
/// [`Instruction::validate`]. `parse_instruction(instruction_xml(i)) == i`
/// for every valid `i`.
pub fn parse_instruction(xml: &[u8]) -> Result<Instruction, CbsError> {
    let document = Document::parse(xml, PACS_009_NAMESPACE, "a pacs.009.001.08 instruction")?;
    let message_id = document.text("FICdtTrf/GrpHdr/MsgId")?;
    let transactions = document.text("FICdtTrf/GrpHdr/NbOfTxs")?;
    if transactions != "1" {
        return Err(malformed(format!("NbOfTxs is {:?}; an instruction carries exactly 1", shorten(transactions))));
    }
    let created_at = parse_iso_datetime(document.text("FICdtTrf/GrpHdr/CreDtTm")?)
        .map_err(|why| malformed(format!("CreDtTm: {why}")))?;
    document.text("FICdtTrf/GrpHdr/SttlmInf/SttlmMtd")?;
    document.one(TX)?;
    let id = document.text(&format!("{TX}/PmtId/EndToEndId"))?;
    check_instruction_id("EndToEndId", id)?;
    if message_id != id {
        return Err(malformed(format!("MsgId {:?} differs from EndToEndId {id:?}", shorten(message_id))));
    }
    let amount = document.kzt_amount(&format!("{TX}/IntrBkSttlmAmt"))?;
    let purpose = document.text(&format!("{TX}/RmtInf/Ustrd"))?;
    let direction =
        [Direction::Issue, Direction::Redeem].into_iter().find(|d| d.remittance_text() == purpose).ok_or_else(
            || malformed(format!("RmtInf/Ustrd {:?} is neither \"DT issue\" nor \"DT redemption\"", shorten(purpose))),
        )?;
    let (bank_side, nbk_side) = match direction {
        Direction::Issue => ("Dbtr", "Cdtr"),
        Direction::Redeem => ("Cdtr", "Dbtr"),
    };
    let nbk_bic = document.text(&format!("{TX}/{nbk_side}/FinInstnId/BICFI"))?;
    if nbk_bic != NBK_BIC {
        return Err(malformed(format!(
            "for {purpose:?} the {nbk_side} must be NBK ({NBK_BIC}), found {:?}",
            shorten(nbk_bic)
        )));
    }
    let bank_bic = document.text(&format!("{TX}/{bank_side}/FinInstnId/BICFI"))?;
    check_bic(&format!("{bank_side} BICFI"), bank_bic)?;
    let participant = document.text(&format!("{TX}/{bank_side}/FinInstnId/Othr/Id"))?;
    let bank = ParticipantId::new(participant).map_err(|e| malformed(format!("{bank_side} Othr/Id: {e}")))?;
    let instruction =
        Instruction { id: id.to_owned(), direction, bank, bank_bic: bank_bic.to_owned(), amount, created_at };
    instruction.validate()?;
    Ok(instruction)
}
