//! # dtenge-cbs
//!
//! Conversion between non-cash tenge and digital tenge (DT) through file
//! exchange with the NBK core banking system (CBS), in ISO 20022 XML.
//!
//! ```text
//!  STB asks NBK to convert          NBK node                          CBS
//!  ───────────────────────►  Exchange::write_instruction ──► outbox/<id>.xml  (pacs.009)
//!                                                                  │ debit (issue) or credit
//!                                                                  │ (redeem) the bank's
//!                                                                  ▼ correspondent account
//!                            Exchange::read_inbox ◄───────── inbox/<file>    (pacs.002)
//!                              │ matches its request, applied ──► accept: processed/
//!                              │ malformed, or answers no request as it stands
//!                              │                 ──► refuse: rejected/ + <file>.report.txt, nothing else changes
//! ```
//!
//! Invariants:
//! - NBK issues DT for a conversion (or destroys DT for a redemption) only
//!   after an `ACSC` confirmation for that instruction; this crate hands the
//!   confirmation over (with the bank and the direction it names), the NBK
//!   node matches it against its request and applies it once, and only then
//!   is the file moved.
//! - An amount above [`MAX_AMOUNT`], which the file format cannot carry, is
//!   never written.
//! - Writing an instruction is idempotent: the same instruction gives the same
//!   bytes and no second file; a different one under the same id is a
//!   [`CbsError::Conflict`], never an overwrite.
//! - A refused file is moved to `rejected/` with a report saying exactly what
//!   is wrong, and changes nothing else.
//! - Reading is bounded: [`MAX_FILE_BYTES`], [`MAX_DEPTH`], [`MAX_ELEMENTS`];
//!   no DTD, no entity expansion. [`parse_confirmation`] and
//!   [`parse_instruction`] are pure and never panic.
//! - This crate knows nothing about the ledger, storage or clocks: times are
//!   passed in. Written times are in Astana time, fixed UTC+5.
//!
//! [`CbsSimulator`] is a stand-in for the CBS for demos and tests; there is no
//! real CBS in this repository.
//!
//! ## An instruction (outbox), pacs.009.001.08
//!
//! An issue of 4 000,00 for bank `STB1` (BIC `HSBKKZKX`): the bank is the
//! debtor, NBK (`NBRKKZKX`) the creditor. For a redemption the two swap and
//! `Ustrd` is `DT redemption`.
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.009.001.08">
//!   <FICdtTrf>
//!     <GrpHdr>
//!       <MsgId>NBK-REQ-000017</MsgId>
//!       <CreDtTm>2024-07-24T16:57:31+05:00</CreDtTm>
//!       <NbOfTxs>1</NbOfTxs>
//!       <SttlmInf>
//!         <SttlmMtd>INDA</SttlmMtd>
//!       </SttlmInf>
//!     </GrpHdr>
//!     <CdtTrfTxInf>
//!       <PmtId>
//!         <InstrId>NBK-REQ-000017</InstrId>
//!         <EndToEndId>NBK-REQ-000017</EndToEndId>
//!       </PmtId>
//!       <IntrBkSttlmAmt Ccy="KZT">4000.00</IntrBkSttlmAmt>
//!       <Dbtr>
//!         <FinInstnId>
//!           <BICFI>HSBKKZKX</BICFI>
//!           <Othr>
//!             <Id>STB1</Id>
//!             <SchmeNm>
//!               <Prtry>DTENGE</Prtry>
//!             </SchmeNm>
//!           </Othr>
//!         </FinInstnId>
//!       </Dbtr>
//!       <Cdtr>
//!         <FinInstnId>
//!           <BICFI>NBRKKZKX</BICFI>
//!         </FinInstnId>
//!       </Cdtr>
//!       <RmtInf>
//!         <Ustrd>DT issue</Ustrd>
//!       </RmtInf>
//!     </CdtTrfTxInf>
//!   </FICdtTrf>
//! </Document>
//! ```
//!
//! ## A confirmation (inbox), pacs.002.001.10
//!
//! Accepted and settled, with the CBS's reference:
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.002.001.10">
//!   <FIToFIPmtStsRpt>
//!     <GrpHdr>
//!       <MsgId>CBS-20240724-000001</MsgId>
//!       <CreDtTm>2024-07-24T16:58:02+05:00</CreDtTm>
//!     </GrpHdr>
//!     <OrgnlGrpInfAndSts>
//!       <OrgnlMsgId>NBK-REQ-000017</OrgnlMsgId>
//!       <OrgnlMsgNmId>pacs.009.001.08</OrgnlMsgNmId>
//!     </OrgnlGrpInfAndSts>
//!     <TxInfAndSts>
//!       <OrgnlEndToEndId>NBK-REQ-000017</OrgnlEndToEndId>
//!       <TxSts>ACSC</TxSts>
//!       <AccptncDtTm>2024-07-24T16:58:02+05:00</AccptncDtTm>
//!       <AcctSvcrRef>CBS-20240724-000001</AcctSvcrRef>
//!       <OrgnlTxRef>
//!         <IntrBkSttlmAmt Ccy="KZT">4000.00</IntrBkSttlmAmt>
//!         <Dbtr>
//!           <Agt>
//!             <FinInstnId>
//!               <BICFI>HSBKKZKX</BICFI>
//!             </FinInstnId>
//!           </Agt>
//!         </Dbtr>
//!         <Cdtr>
//!           <Agt>
//!             <FinInstnId>
//!               <BICFI>NBRKKZKX</BICFI>
//!             </FinInstnId>
//!           </Agt>
//!         </Cdtr>
//!       </OrgnlTxRef>
//!     </TxInfAndSts>
//!   </FIToFIPmtStsRpt>
//! </Document>
//! ```
//!
//! A rejection carries `RJCT` and its reason instead of the acceptance time
//! and reference (the report's `CreDtTm` is then the booking time):
//!
//! ```xml
//!       <TxSts>RJCT</TxSts>
//!       <StsRsnInf>
//!         <Rsn>
//!           <Cd>NARR</Cd>
//!         </Rsn>
//!         <AddtlInf>insufficient funds on the correspondent account</AddtlInf>
//!       </StsRsnInf>
//! ```

mod confirmation;
mod exchange;
mod instruction;
mod model;
mod simulator;
mod time;
mod xml;

use std::path::PathBuf;

pub use confirmation::{MAX_REASON_CHARS, confirmation_xml, parse_confirmation};
pub use exchange::{Exchange, ImportReport, InboxFile, MAX_IMPORT_FILES};
pub use exchange::{REFUSED_DIR, SENT_DIR};
pub use instruction::{PARTICIPANT_SCHEME, instruction_xml, parse_instruction};
pub use model::{
    Confirmation, ConfirmationStatus, Direction, Instruction, MAX_AMOUNT, MAX_INSTRUCTION_ID_LEN, NBK_BIC,
    check_amount, check_bic, check_instruction_id,
};
pub use simulator::CbsSimulator;
pub use time::{MAX_TIMESTAMP_MS, astana_month_start, format_astana, parse_iso_datetime};
pub use xml::{MAX_DEPTH, MAX_ELEMENTS, parse_plain_amount};

/// The ISO 20022 namespace of an instruction (FinancialInstitutionCreditTransfer).
pub const PACS_009_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:pacs.009.001.08";
/// The ISO 20022 namespace of a confirmation (FIToFIPaymentStatusReport).
pub const PACS_002_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:pacs.002.001.10";
/// Largest file read from the exchange: 1 MiB. One-transaction messages are
/// about 2 KiB, so anything near this is not a message.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Why a CBS file could not be written, read or accepted.
#[derive(Debug, thiserror::Error)]
pub enum CbsError {
    /// A file or folder of the exchange could not be used; check the path's
    /// permissions and free space, then retry.
    #[error("CBS exchange: cannot use {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A message is not acceptable; `what` says exactly which part and why.
    #[error("malformed CBS message: {what}")]
    Malformed {
        /// What is wrong.
        what: String,
    },
    /// A different instruction was already written under this id; an
    /// instruction is never replaced — use a new id.
    #[error("instruction {id} differs from the instruction already written under that id; use a new id")]
    Conflict {
        /// The instruction id.
        id: String,
    },
}
