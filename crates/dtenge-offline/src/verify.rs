//! Offline verification of a chain: what a receiving device checks with no
//! network (bank keys and revocation lists fetched when it was last online),
//! and what a bank checks again at deposit.

use std::collections::{BTreeMap, BTreeSet};

use dtenge_crypto::{Digest, Ed25519, PublicKey, Verifier};
use dtenge_types::{ParticipantId, Timestamp};

use crate::OfflineError;
use crate::message::{Chain, MAX_CHAIN_HOPS, MAX_PAYMENT_HOPS, MAX_REVOKED, RevocationList};

/// How far a signer's clock may run ahead of the verifier's.
pub const TIME_SKEW_MS: u64 = 5 * 60 * 1000;
/// Most banks a trust store knows.
const MAX_BANKS: usize = 256;

/// What a wallet or bank trusts: banks' keys and revoked devices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    banks: BTreeMap<ParticipantId, PublicKey>,
    revoked: BTreeSet<PublicKey>,
    serials: BTreeMap<ParticipantId, u64>,
}

impl Trust {
    /// Trusts these banks' keys (at most 256).
    pub fn new(banks: impl IntoIterator<Item = (ParticipantId, PublicKey)>) -> Result<Self, OfflineError> {
        let banks: BTreeMap<_, _> = banks.into_iter().collect();
        if banks.len() > MAX_BANKS {
            return Err(OfflineError::Limit("more than 256 banks"));
        }
        Ok(Trust { banks, ..Trust::default() })
    }

    /// A bank's key.
    pub fn bank_key(&self, bank: &ParticipantId) -> Result<PublicKey, OfflineError> {
        self.banks.get(bank).copied().ok_or_else(|| OfflineError::UnknownBank(bank.to_string()))
    }

    /// Whether a device is revoked.
    pub fn is_revoked(&self, device: &PublicKey) -> bool {
        self.revoked.contains(device)
    }

    /// Takes a bank's signed revocation list; an older serial than one
    /// already taken changes nothing (answers `false`).
    pub fn apply_revocations(&mut self, list: &RevocationList) -> Result<bool, OfflineError> {
        let key = self.bank_key(&list.bank)?;
        Ed25519
            .verify(&key, list.message().as_bytes(), &list.signature)
            .map_err(|_| OfflineError::BadSignature("revocation list"))?;
        if self.serials.get(&list.bank).is_some_and(|s| *s >= list.serial) {
            return Ok(false);
        }
        if self.revoked.len().saturating_add(list.devices.len()) > MAX_REVOKED.saturating_mul(4) {
            return Err(OfflineError::Limit("revocation lists too long"));
        }
        self.revoked.extend(list.devices.iter().copied());
        self.serials.insert(list.bank.clone(), list.serial);
        Ok(true)
    }
}

/// What a chain is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A device receiving a payment offline: it must end at `receiver`,
    /// carry at most [`MAX_PAYMENT_HOPS`] hops, name no revoked device, and
    /// every hop must be within its payer's certificate.
    Payment {
        /// The receiving device's key.
        receiver: PublicKey,
    },
    /// A bank taking a deposit online: the last hop is the holder's deposit
    /// to its DA, signed when it reconnected (so its certificate may have
    /// lapsed and it is outside the offline limits). Revocations are not
    /// applied — a device revoked after it paid honestly leaves its payees'
    /// value good; overlapping ranges are what the bank's book catches.
    Deposit,
}

/// What a verified chain entitles its last key to: a range of one load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    /// The load's id (the chain's root).
    pub load: Digest,
    /// The bank whose reserve holds it.
    pub bank: ParticipantId,
    /// First tiyn held.
    pub lo: u64,
    /// One past the last.
    pub hi: u64,
    /// The key it ends at (a device, or on deposit a DA address).
    pub owner: PublicKey,
    /// The last hop's id.
    pub tip: Digest,
}

impl Entitlement {
    /// Tiyn held.
    pub fn amount(&self) -> u64 {
        self.hi.saturating_sub(self.lo)
    }
}

/// Verifies a chain offline against `trust` at the verifier's time `now`.
pub fn verify_chain(
    chain: &Chain,
    trust: &Trust,
    purpose: Purpose,
    now: Timestamp,
) -> Result<Entitlement, OfflineError> {
    let hops = chain.hops.as_slice();
    let certificates = chain.certificates.as_slice();
    let max = match purpose {
        Purpose::Payment { .. } => MAX_PAYMENT_HOPS,
        Purpose::Deposit => MAX_CHAIN_HOPS,
    };
    if hops.is_empty() || hops.len() > max {
        return Err(OfflineError::TooManyHops { hops: hops.len(), max });
    }
    if certificates.len() != hops.len() {
        return Err(OfflineError::ChainBroken { index: 0, reason: "one certificate per hop is needed" });
    }
    let load = &chain.load;
    let bank_key = trust.bank_key(&load.bank)?;
    Ed25519.verify(&bank_key, load.id().as_bytes(), &load.signature).map_err(|_| OfflineError::BadSignature("load"))?;
    if load.amount.is_zero() {
        return Err(OfflineError::Range(0));
    }
    let latest = now.millis().saturating_add(TIME_SKEW_MS);
    let (mut parent, mut owner) = (load.id(), load.device);
    let (mut lo, mut hi, mut parent_at) = (0u64, load.amount.tiyn(), load.loaded_at);
    let last = hops.len().saturating_sub(1);
    for (index, (hop, certificate)) in hops.iter().zip(certificates).enumerate() {
        if certificate.device != owner {
            return Err(OfflineError::ChainBroken {
                index,
                reason: "the certificate names another device than the payer",
            });
        }
        let key = trust.bank_key(&certificate.bank)?;
        Ed25519
            .verify(&key, certificate.message().as_bytes(), &certificate.signature)
            .map_err(|_| OfflineError::BadSignature("certificate"))?;
        if index == 0 && load.amount > certificate.limits.balance_max {
            return Err(OfflineError::Limit("load above the device's offline balance"));
        }
        let deposit_hop = purpose == Purpose::Deposit && index == last;
        if !deposit_hop {
            if matches!(purpose, Purpose::Payment { .. }) && trust.is_revoked(&owner) {
                return Err(OfflineError::Revoked(owner));
            }
            if hop.at > certificate.valid_until {
                return Err(OfflineError::Expired(owner));
            }
            if !certificate.covers_counter(hop.counter) {
                return Err(OfflineError::Limit("counter outside the certificate: too many offline payments"));
            }
            if hop.hi.saturating_sub(hop.lo) > certificate.limits.payment_max.tiyn() {
                return Err(OfflineError::Limit("hop above the device's per-payment limit"));
            }
        }
        if hop.lo >= hop.hi || hop.lo < lo || hop.hi > hi {
            return Err(OfflineError::Range(index));
        }
        if hop.at < parent_at || hop.at.millis() > latest {
            return Err(OfflineError::Time(index));
        }
        Ed25519.verify(&owner, &hop.message(&parent), &hop.signature).map_err(|_| OfflineError::BadSignature("hop"))?;
        parent = hop.id(&parent);
        owner = hop.payee;
        (lo, hi, parent_at) = (hop.lo, hop.hi, hop.at);
    }
    if let Purpose::Payment { receiver } = purpose {
        if owner != receiver {
            return Err(OfflineError::ChainBroken { index: last, reason: "the payment is to another device" });
        }
        if let Some(payer) = certificates.last()
            && now > payer.valid_until
        {
            return Err(OfflineError::Expired(payer.device));
        }
    }
    Ok(Entitlement { load: load.id(), bank: load.bank.clone(), lo, hi, owner, tip: parent })
}
