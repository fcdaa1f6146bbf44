//! A CBS SIMULATOR: a stand-in for the NBK core banking system, for demos and
//! tests only. There is no real CBS here; nothing in production may use this.
//!
//! For each instruction in the outbox it books nothing (there are no accounts)
//! and answers with a pacs.002 in the inbox: `ACSC` with a reference
//! `CBS-<yyyymmdd>-<n>` (the Astana date of `now`, `n` a six-digit sequence
//! over all its answers), or `RJCT` when the `reject` callback gives a reason.
//! It then moves the instruction to `outbox/sent/`. A file it cannot read as an
//! instruction goes to `outbox/refused/` with a report, and the others are
//! still answered.
//!
//! Crash safety, as a real CBS would need it: the answer is first kept in
//! `outbox/sent/<id>.pacs002.xml`, then delivered to the inbox, then the
//! instruction moved. A run interrupted between these steps re-delivers the
//! same answer (same reference) next time, never a second booking.

use std::fs;
use std::path::{Path, PathBuf};

use dtenge_types::{CbsRef, Timestamp};

use crate::exchange::{REFUSED_DIR, SENT_DIR};
use crate::exchange::{io, list_files, move_into, read_bounded, write_atomically};
use crate::model::{Confirmation, ConfirmationStatus, Instruction, malformed};
use crate::time::astana_date_compact;
use crate::{CbsError, confirmation_xml, parse_instruction};

const ANSWER_SUFFIX: &str = ".pacs002.xml";

/// The CBS stand-in; see the module documentation.
#[derive(Debug, Clone)]
pub struct CbsSimulator {
    outbox: PathBuf,
    sent: PathBuf,
    inbox: PathBuf,
}

impl CbsSimulator {
    /// A simulator working on the exchange at `exchange_root` (the same root
    /// as [`Exchange::open`](crate::Exchange::open)).
    pub fn new(exchange_root: impl Into<PathBuf>) -> Self {
        let root = exchange_root.into();
        let outbox = root.join("outbox");
        CbsSimulator { sent: outbox.join(SENT_DIR), outbox, inbox: root.join("inbox") }
    }

    /// Answers every instruction in the outbox, in file-name order, as of
    /// `now`; `reject` returns a reason to refuse an instruction. Returns how
    /// many were answered.
    pub fn process(&self, now: Timestamp, reject: impl Fn(&Instruction) -> Option<String>) -> Result<usize, CbsError> {
        for dir in [&self.outbox, &self.sent, &self.inbox] {
            fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
        }
        let mut answers_so_far =
            list_files(&self.sent)?.iter().filter(|path| path.to_string_lossy().ends_with(ANSWER_SUFFIX)).count();
        let mut answered = 0;
        for path in list_files(&self.outbox)? {
            // A file that is no instruction is set aside with a report; the
            // others are answered (a real CBS refuses a bad file the same way).
            let instruction = match read_bounded(&path)?.and_then(|bytes| parse_instruction(&bytes)) {
                Ok(instruction) => instruction,
                Err(error) => {
                    self.set_aside(&path, &error.to_string())?;
                    continue;
                }
            };
            let name = format!("{}{ANSWER_SUFFIX}", instruction.id);
            let kept = self.sent.join(&name);
            let answer = match fs::read(&kept) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    answers_so_far += 1;
                    let bytes = answer(&instruction, now, answers_so_far, &reject)?.into_bytes();
                    write_atomically(&kept, &bytes)?;
                    bytes
                }
                Err(source) => return Err(io(&kept, source)),
            };
            write_atomically(&self.inbox.join(&name), &answer)?;
            move_to_sent(&path, &self.sent)?;
            answered += 1;
        }
        Ok(answered)
    }

    fn set_aside(&self, path: &Path, reason: &str) -> Result<(), CbsError> {
        let refused = self.outbox.join(REFUSED_DIR);
        fs::create_dir_all(&refused).map_err(|source| io(&refused, source))?;
        let moved = move_into(path, &refused)?;
        let report = format!("The CBS simulator could not read this instruction: {reason}\n");
        write_atomically(&PathBuf::from(format!("{}.report.txt", moved.display())), report.as_bytes())
    }
}

fn answer(
    instruction: &Instruction,
    now: Timestamp,
    sequence: usize,
    reject: &impl Fn(&Instruction) -> Option<String>,
) -> Result<String, CbsError> {
    let message_id = format!("CBS-{}-{sequence:06}", astana_date_compact(now));
    let status = match reject(instruction) {
        Some(reason) => ConfirmationStatus::Rejected { reason },
        None => ConfirmationStatus::Accepted {
            cbs_reference: CbsRef::new(message_id.clone()).map_err(|e| malformed(e.to_string()))?,
        },
    };
    let confirmation = Confirmation {
        instruction_id: instruction.id.clone(),
        status,
        amount: instruction.amount,
        bank_bic: instruction.bank_bic.clone(),
        direction: instruction.direction,
        booked_at: now,
    };
    Ok(confirmation_xml(&confirmation, &message_id))
}

fn move_to_sent(path: &Path, sent: &Path) -> Result<(), CbsError> {
    let name = path.file_name().ok_or_else(|| malformed(format!("{} has no file name", path.display())))?;
    let destination = sent.join(name);
    fs::rename(path, &destination).map_err(|source| io(path, source))
}
