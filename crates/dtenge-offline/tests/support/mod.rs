//! A bank that certifies devices and signs loads, for the protocol tests.
#![allow(dead_code, clippy::unwrap_used)]

use dtenge_crypto::{PublicKey, SecretKey};
use dtenge_offline::{Certificate, Limits, Load, Purse, RevocationList, SecureElement, SoftwareElement, Trust};
use dtenge_types::{Amount, BoundedVec, ParticipantId, Timestamp};

pub const T0: u64 = 1_800_000_000_000;
pub const HOUR: u64 = 3_600_000;

pub fn at(ms: u64) -> Timestamp {
    Timestamp(T0 + ms)
}

pub struct Bank {
    pub id: ParticipantId,
    pub key: SecretKey,
    pub serial: std::cell::Cell<u64>,
}

pub fn limits() -> Limits {
    Limits {
        balance_max: Amount::from_tiyn(100_000),
        payment_max: Amount::from_tiyn(50_000),
        payments_max: 20,
        offline_ms_max: 24 * HOUR,
    }
}

impl Bank {
    pub fn new(id: &str, seed: u8) -> Bank {
        Bank { id: ParticipantId::new(id).unwrap(), key: SecretKey::from_seed([seed; 32]), serial: Default::default() }
    }

    pub fn certify(&self, device: PublicKey, counter_from: u32, limits: Limits, now: Timestamp) -> Certificate {
        let valid_until = Timestamp(now.millis() + limits.offline_ms_max);
        let message = Certificate::signing_message(&self.id, &device, &limits, counter_from, valid_until);
        Certificate {
            bank: self.id.clone(),
            device,
            limits,
            counter_from,
            valid_until,
            signature: self.key.sign(message.as_bytes()),
        }
    }

    pub fn load(&self, device: PublicKey, tiyn: u64, now: Timestamp) -> Load {
        let serial = self.serial.get() + 1;
        self.serial.set(serial);
        let amount = Amount::from_tiyn(tiyn);
        let message = Load::signing_message(&self.id, serial, &device, amount, now);
        Load {
            bank: self.id.clone(),
            serial,
            device,
            amount,
            loaded_at: now,
            signature: self.key.sign(message.as_bytes()),
        }
    }

    pub fn revocations(&self, serial: u64, devices: Vec<PublicKey>) -> RevocationList {
        let devices = BoundedVec::new(devices).unwrap();
        let message = RevocationList::signing_message(&self.id, serial, &devices);
        RevocationList { bank: self.id.clone(), serial, devices, signature: self.key.sign(message.as_bytes()) }
    }
}

pub fn trust(banks: &[&Bank]) -> Trust {
    Trust::new(banks.iter().map(|b| (b.id.clone(), b.key.public_key()))).unwrap()
}

pub fn purse(bank: &Bank, seed: u8, banks: &[&Bank]) -> Purse<SoftwareElement> {
    let element = SoftwareElement::from_seed([seed; 32]);
    let certificate = bank.certify(element.device_key(), element.next_counter(), limits(), at(0));
    Purse::new(element, certificate, trust(banks)).unwrap()
}
