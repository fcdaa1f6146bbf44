//! Prints a sample instruction and confirmation, as written by this crate.

use dtenge_cbs::{Confirmation, ConfirmationStatus, Direction, Instruction, confirmation_xml, instruction_xml};
use dtenge_types::{Amount, CbsRef, ParticipantId, Timestamp};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let instruction = Instruction {
        id: "NBK-REQ-000017".into(),
        direction: Direction::Issue,
        bank: ParticipantId::new("STB1")?,
        bank_bic: "HSBKKZKX".into(),
        amount: Amount::from_tiyn(400_000),
        created_at: Timestamp(1_721_822_251_000),
    };
    print!("{}", instruction_xml(&instruction));
    let accepted = Confirmation {
        instruction_id: instruction.id.clone(),
        status: ConfirmationStatus::Accepted { cbs_reference: CbsRef::new("CBS-20240724-000001")? },
        amount: instruction.amount,
        bank_bic: instruction.bank_bic.clone(),
        direction: instruction.direction,
        booked_at: Timestamp(1_721_822_282_000),
    };
    print!("{}", confirmation_xml(&accepted, "CBS-20240724-000001"));
    let rejected = Confirmation {
        status: ConfirmationStatus::Rejected { reason: "insufficient funds on the correspondent account".into() },
        direction: Direction::Redeem,
        ..accepted
    };
    print!("{}", confirmation_xml(&rejected, "CBS-20240724-000002"));
    Ok(())
}
