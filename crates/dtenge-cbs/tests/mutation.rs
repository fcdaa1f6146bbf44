//! Deterministic mutation test: random byte edits of valid files never make
//! the parsers panic. A failure names the seed and the iteration to replay.

use dtenge_cbs::{
    Confirmation, ConfirmationStatus, Direction, Instruction, confirmation_xml, instruction_xml, parse_confirmation,
    parse_instruction,
};
use dtenge_types::{Amount, CbsRef, ParticipantId, Timestamp};

const SEED: u64 = 0x5EED_0CB5_2024;
const MUTATIONS: usize = 2000;

/// xorshift64*: enough randomness for mutations, no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

/// Bytes an XML mutation most likely hits something interesting with.
const INTERESTING: &[u8] = b"<>/&;\"'=:.-0123456789 \n\x00\xFF\xC3ACSCRJCTKZT";

fn mutate(rng: &mut XorShift, input: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(bytes.len());
        match rng.below(6) {
            0 => bytes[at] = rng.next() as u8,
            1 => bytes[at] = INTERESTING[rng.below(INTERESTING.len())],
            2 => {
                let end = (at + rng.below(64)).min(bytes.len());
                bytes.drain(at..end);
            }
            3 => bytes.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            4 => {
                let end = (at + rng.below(128)).min(bytes.len());
                let copy: Vec<u8> = bytes[at..end].to_vec();
                let to = rng.below(bytes.len());
                bytes.splice(to..to, copy);
            }
            _ => bytes.truncate(at),
        }
        if bytes.is_empty() {
            break;
        }
    }
    bytes
}

fn confirmation(status: ConfirmationStatus) -> Vec<u8> {
    let c = Confirmation {
        instruction_id: "NBK-REQ-000017".into(),
        status,
        amount: Amount::from_tiyn(400_000),
        bank_bic: "HSBKKZKX".into(),
        direction: Direction::Issue,
        booked_at: Timestamp(1_721_822_282_000),
    };
    confirmation_xml(&c, "CBS-20240724-000001").into_bytes()
}

#[test]
fn random_mutations_of_a_confirmation_never_panic() {
    let accepted =
        confirmation(ConfirmationStatus::Accepted { cbs_reference: CbsRef::new("CBS-20240724-000001").expect("ref") });
    let rejected = confirmation(ConfirmationStatus::Rejected { reason: "insufficient funds".into() });
    assert!(parse_confirmation(&accepted).is_ok() && parse_confirmation(&rejected).is_ok());
    let mut rng = XorShift(SEED);
    let (mut still_valid, mut refused) = (0, 0);
    for iteration in 0..MUTATIONS {
        let base = if iteration % 2 == 0 { &accepted } else { &rejected };
        let mutated = mutate(&mut rng, base);
        let outcome = std::panic::catch_unwind(|| parse_confirmation(&mutated));
        match outcome {
            Ok(Ok(_)) => still_valid += 1,
            Ok(Err(error)) => {
                assert!(!error.to_string().is_empty());
                refused += 1;
            }
            Err(_) => panic!("parse_confirmation panicked: seed {SEED:#x}, iteration {iteration}"),
        }
    }
    assert_eq!(still_valid + refused, MUTATIONS);
    assert!(refused > MUTATIONS / 2, "mutations should mostly break the file: {refused} refused");
}

#[test]
fn random_mutations_of_an_instruction_never_panic() {
    let instruction = Instruction {
        id: "NBK-REQ-000017".into(),
        direction: Direction::Redeem,
        bank: ParticipantId::new("STB1").expect("participant"),
        bank_bic: "HSBKKZKX".into(),
        amount: Amount::from_tiyn(400_000),
        created_at: Timestamp(1_721_822_251_000),
    };
    let xml = instruction_xml(&instruction).into_bytes();
    let mut rng = XorShift(SEED ^ 0xA5A5);
    for iteration in 0..MUTATIONS {
        let mutated = mutate(&mut rng, &xml);
        if std::panic::catch_unwind(|| parse_instruction(&mutated)).is_err() {
            panic!("parse_instruction panicked: seed {SEED:#x}, iteration {iteration}");
        }
    }
}
