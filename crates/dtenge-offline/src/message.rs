//! The offline messages and their canonical encoding (borsh, decoded through
//! `dtenge_types::encoding::decode`: bounded, canonical, no trailing bytes).
//!
//! ```text
//! Chain = Load (bank: "device D holds [0, amount) of load (bank, serial)")
//!       + one Certificate per hop (bank: "key K is a device, with these limits")
//!       + Hops (holder's element: "[lo, hi) of my parent goes to payee P")
//! ```
//! Sizes (borsh): a load is 120 bytes + the bank id (4 + its length), a
//! certificate 136 + the bank id, a hop 124; docs/offline.md has the figures.

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::{Digest, PublicKey, Signature, hash};
use dtenge_types::{Amount, BoundedVec, ParticipantId, Timestamp, encoding};

use crate::OfflineError;
use crate::element::Counted;

/// Most hops a device-to-device payment carries (it must fit a QR code or an
/// NFC exchange); a holding that arrived over this many hops is deposited,
/// not paid on.
pub const MAX_PAYMENT_HOPS: usize = 3;
/// Most hops of a chain at all: a payment's plus the holder's deposit hop.
pub const MAX_CHAIN_HOPS: usize = MAX_PAYMENT_HOPS + 1;
/// Largest device-to-device payment: one QR code (binary, level L, version
/// 32 holds 1 370 bytes) or a few NFC frames.
pub const MAX_PAYMENT_BYTES: usize = 1024;
/// Largest chain the decoder reads (bank ids of up to 32 characters, four hops).
pub const MAX_CHAIN_BYTES: usize = 1400;
/// Most devices one revocation list names.
pub const MAX_REVOKED: usize = 4096;
/// Largest revocation list the decoder reads.
const MAX_REVOCATIONS_BYTES: usize = 64 + MAX_REVOKED * 32 + 128;

const _: () = assert!(MAX_CHAIN_HOPS == MAX_PAYMENT_HOPS + 1);
const _: () = assert!(MAX_PAYMENT_BYTES < MAX_CHAIN_BYTES);

const LOAD_DOMAIN: &[u8] = b"dtenge/offline/load/v1";
const CERTIFICATE_DOMAIN: &[u8] = b"dtenge/offline/certificate/v1";
const HOP_DOMAIN: &[u8] = b"dtenge/offline/hop/v1";
const REVOCATIONS_DOMAIN: &[u8] = b"dtenge/offline/revocations/v1";

/// What a bank lets one device do offline (Polaris: the limits bound the
/// loss from a compromised device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Limits {
    /// Most offline value the device may hold.
    pub balance_max: Amount,
    /// Most value one hop may move.
    pub payment_max: Amount,
    /// Most hops the device may sign under one certificate (counter values
    /// `counter_from .. counter_from + payments_max`).
    pub payments_max: u32,
    /// Time from certification to the certificate's end: the device must
    /// reconnect (and be certified again) within it.
    pub offline_ms_max: u64,
}

/// A bank's certificate of a device key, renewed at every reconnection.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Certificate {
    /// The certifying bank.
    pub bank: ParticipantId,
    /// The device key.
    pub device: PublicKey,
    /// Its limits.
    pub limits: Limits,
    /// The device's counter when certified: hops under this certificate use
    /// counters from here.
    pub counter_from: u32,
    /// The end of offline use: hops signed later are refused.
    pub valid_until: Timestamp,
    /// The bank's signature.
    pub signature: Signature,
}

impl Certificate {
    /// The bytes the bank signs.
    pub fn signing_message(
        bank: &ParticipantId,
        device: &PublicKey,
        limits: &Limits,
        counter_from: u32,
        valid_until: Timestamp,
    ) -> Digest {
        hash(CERTIFICATE_DOMAIN, &[&encoding::encode(&(bank, device, limits, counter_from, valid_until))])
    }

    /// This certificate's signed message.
    pub fn message(&self) -> Digest {
        Self::signing_message(&self.bank, &self.device, &self.limits, self.counter_from, self.valid_until)
    }

    /// Whether counter value `counter` falls under this certificate.
    pub fn covers_counter(&self, counter: u32) -> bool {
        counter >= self.counter_from
            && u64::from(counter) < u64::from(self.counter_from).saturating_add(u64::from(self.limits.payments_max))
    }
}

/// A bank's statement that a device holds `[0, amount)` of offline value,
/// made when a purse is funded from a DA into the bank's offline reserve.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Load {
    /// The bank whose reserve holds the value (it settles deposits).
    pub bank: ParticipantId,
    /// Its number at that bank.
    pub serial: u64,
    /// The funded device.
    pub device: PublicKey,
    /// Value.
    pub amount: Amount,
    /// When it was funded.
    pub loaded_at: Timestamp,
    /// The bank's signature.
    pub signature: Signature,
}

impl Load {
    /// The bytes the bank signs.
    pub fn signing_message(
        bank: &ParticipantId,
        serial: u64,
        device: &PublicKey,
        amount: Amount,
        loaded_at: Timestamp,
    ) -> Digest {
        hash(LOAD_DOMAIN, &[&encoding::encode(&(bank, serial, device, amount, loaded_at))])
    }

    /// This load's signed message; also its identity, the root of every chain over it.
    pub fn id(&self) -> Digest {
        Self::signing_message(&self.bank, self.serial, &self.device, self.amount, self.loaded_at)
    }
}

/// One step of value: the holder's element passes `[lo, hi)` on to `payee`
/// (another device's key, or on deposit the holder's DA address).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Hop {
    /// First tiyn of the load moved.
    pub lo: u64,
    /// One past the last.
    pub hi: u64,
    /// Who receives it.
    pub payee: PublicKey,
    /// The payer element's counter value.
    pub counter: u32,
    /// When the payer signed (the payer's clock).
    pub at: Timestamp,
    /// The payer element's signature (see [`Counted`]).
    pub signature: Signature,
}

impl Hop {
    /// The body the payer's element signs (with its counter bound in).
    pub fn body(parent: &Digest, lo: u64, hi: u64, payee: &PublicKey, at: Timestamp) -> Vec<u8> {
        encoding::encode(&(HOP_DOMAIN, parent, lo, hi, payee, at))
    }

    /// The message the payer's key signed.
    pub fn message(&self, parent: &Digest) -> [u8; 32] {
        Counted::message(self.counter, &Self::body(parent, self.lo, self.hi, &self.payee, self.at))
    }

    /// This hop's identity: its parent and everything it says, signature aside.
    pub fn id(&self, parent: &Digest) -> Digest {
        Digest(self.message(parent))
    }

    /// Tiyn moved.
    pub fn amount(&self) -> Option<Amount> {
        self.hi.checked_sub(self.lo).map(Amount::from_tiyn)
    }

    /// Whether two ranges share a tiyn.
    pub fn overlaps(&self, other: &Hop) -> bool {
        self.lo < other.hi && other.lo < self.hi
    }
}

/// A load and the hops that carried (part of) it to its holder: what one
/// device hands another, and what a holder deposits.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Chain {
    /// The root.
    pub load: Load,
    /// `certificates[i]` certifies the payer of `hops[i]`.
    pub certificates: BoundedVec<Certificate, MAX_CHAIN_HOPS>,
    /// The hops, oldest first.
    pub hops: BoundedVec<Hop, MAX_CHAIN_HOPS>,
}

impl Chain {
    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// The range the chain ends with.
    pub fn range(&self) -> (u64, u64) {
        self.hops.as_slice().last().map_or((0, self.load.amount.tiyn()), |h| (h.lo, h.hi))
    }

    /// The ids of the hops, oldest first (each parent's id is the next's parent).
    pub fn hop_ids(&self) -> Vec<Digest> {
        let mut parent = self.load.id();
        self.hops
            .as_slice()
            .iter()
            .map(|h| {
                parent = h.id(&parent);
                parent
            })
            .collect()
    }
}

/// Decodes a chain from outside (a QR code, NFC, an API body).
pub fn decode_chain(bytes: &[u8]) -> Result<Chain, OfflineError> {
    encoding::decode(bytes, MAX_CHAIN_BYTES).map_err(|e| OfflineError::Malformed(e.to_string()))
}

/// Encodes a device-to-device payment, refusing one over [`MAX_PAYMENT_BYTES`].
pub fn encode_payment(chain: &Chain) -> Result<Vec<u8>, OfflineError> {
    let bytes = chain.encode();
    if bytes.len() > MAX_PAYMENT_BYTES {
        return Err(OfflineError::Limit("payment larger than 1 KiB: deposit the holding instead"));
    }
    Ok(bytes)
}

/// A bank's signed list of revoked devices; wallets fetch it when online.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct RevocationList {
    /// The bank.
    pub bank: ParticipantId,
    /// Grows with every change; a wallet keeps the highest it has seen.
    pub serial: u64,
    /// Revoked device keys.
    pub devices: BoundedVec<PublicKey, MAX_REVOKED>,
    /// The bank's signature.
    pub signature: Signature,
}

impl RevocationList {
    /// The bytes the bank signs.
    pub fn signing_message(bank: &ParticipantId, serial: u64, devices: &BoundedVec<PublicKey, MAX_REVOKED>) -> Digest {
        hash(REVOCATIONS_DOMAIN, &[&encoding::encode(&(bank, serial, devices))])
    }

    /// This list's signed message.
    pub fn message(&self) -> Digest {
        Self::signing_message(&self.bank, self.serial, &self.devices)
    }
}

/// Decodes a revocation list from outside.
pub fn decode_revocations(bytes: &[u8]) -> Result<RevocationList, OfflineError> {
    encoding::decode(bytes, MAX_REVOCATIONS_BYTES).map_err(|e| OfflineError::Malformed(e.to_string()))
}
