//! A bank's deposit book: every chain deposited against the bank's loads.
//! Deciding is pure ([`DepositBook::decide`]); the bank journals the
//! decision, then applies it ([`DepositBook::apply`]) — the book settles
//! each tiyn of a load at most once, and a second chain over a tiyn already
//! deposited is answered with the [`Proof`] of the device that signed twice.

use std::collections::{BTreeMap, BTreeSet};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::{Digest, Ed25519, PublicKey, Verifier};
use dtenge_types::{Amount, ParticipantId, Timestamp};

use crate::OfflineError;
use crate::message::{Certificate, Chain, Hop};
use crate::verify::{Purpose, Trust, verify_chain};

/// Most deposits one load may be split into.
pub const MAX_DEPOSITS_PER_LOAD: usize = 1024;

/// Two hops one device signed from the same parent over overlapping ranges:
/// anyone with the bank's key can check it, so it proves which device paid
/// the same value twice.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proof {
    /// The device's certificate (names the device and its bank).
    pub certificate: Certificate,
    /// The parent both hops spend.
    pub parent: Digest,
    /// The hop deposited first.
    pub first: Hop,
    /// The conflicting hop.
    pub second: Hop,
}

impl Proof {
    /// The culprit device.
    pub fn device(&self) -> PublicKey {
        self.certificate.device
    }

    /// Checks the proof on its own: certificate by a trusted bank, both hops
    /// signed by the device over the same parent, different, overlapping.
    pub fn check(&self, trust: &Trust) -> Result<(), OfflineError> {
        let key = trust.bank_key(&self.certificate.bank)?;
        Ed25519
            .verify(&key, self.certificate.message().as_bytes(), &self.certificate.signature)
            .map_err(|_| OfflineError::BadSignature("certificate"))?;
        let device = self.device();
        for hop in [&self.first, &self.second] {
            Ed25519
                .verify(&device, &hop.message(&self.parent), &hop.signature)
                .map_err(|_| OfflineError::BadSignature("hop"))?;
        }
        if self.first.id(&self.parent) == self.second.id(&self.parent) || !self.first.overlaps(&self.second) {
            return Err(OfflineError::Unattributable);
        }
        Ok(())
    }
}

/// A detected double spend.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Conflict {
    /// Who did it.
    pub proof: Proof,
    /// The refused deposit's last hop.
    pub tip: Digest,
    /// Tiyn of the refused deposit already settled to someone else: the
    /// loss, borne by the certifying bank (docs/offline.md).
    pub loss: Amount,
}

/// What a deposit comes to.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Decision {
    /// New value: pay `amount` from the reserve to the DA at address `to`.
    Settle {
        /// The deposit's last hop.
        tip: Digest,
        /// Tiyn.
        amount: Amount,
        /// The DA's address key.
        to: PublicKey,
    },
    /// This very chain was deposited before: nothing more is paid.
    Already {
        /// The deposit's last hop.
        tip: Digest,
    },
    /// It overlaps a deposited chain: refused, the device named.
    Conflict(Box<Conflict>),
}

/// What a deposit came to at the bank whose load it spends (also the answer
/// that bank's node gives another bank's node handing it a deposit).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum DepositOutcome {
    /// Paid from the reserve into the DA.
    Settled {
        /// Tiyn.
        amount: Amount,
        /// The reserve's payment.
        tx: dtenge_types::TxId,
    },
    /// This chain was settled before (by `tx` if known).
    AlreadySettled {
        /// The earlier payment.
        tx: Option<dtenge_types::TxId>,
    },
    /// A double spend: refused, the device revoked.
    DoubleSpend(Box<Conflict>),
}

/// A bank's deposits, by load.
#[derive(Debug, Clone, Default)]
pub struct DepositBook {
    bank: Option<ParticipantId>,
    loads: BTreeMap<Digest, Vec<Chain>>,
    conflicts: Vec<Conflict>,
    revoked: BTreeSet<PublicKey>,
}

impl DepositBook {
    /// An empty book of `bank`'s loads.
    pub fn new(bank: ParticipantId) -> Self {
        DepositBook { bank: Some(bank), ..DepositBook::default() }
    }

    /// Decides a deposit (pure).
    pub fn decide(&self, chain: &Chain, trust: &Trust, now: Timestamp) -> Result<Decision, OfflineError> {
        if self.bank.as_ref() != Some(&chain.load.bank) {
            return Err(OfflineError::WrongBank(chain.load.bank.to_string()));
        }
        let entitled = verify_chain(chain, trust, Purpose::Deposit, now)?;
        let earlier = self.loads.get(&entitled.load).map(Vec::as_slice).unwrap_or_default();
        let ids = chain.hop_ids();
        for prior in earlier {
            let prior_ids = prior.hop_ids();
            if prior_ids.last() == Some(&entitled.tip) {
                return Ok(Decision::Already { tip: entitled.tip });
            }
            let (plo, phi) = prior.range();
            if !(entitled.lo < phi && plo < entitled.hi) {
                continue;
            }
            let Some(at) = ids.iter().zip(&prior_ids).position(|(a, b)| a != b) else {
                return Err(OfflineError::Unattributable);
            };
            let parent = if at == 0 { entitled.load } else { ids[at.saturating_sub(1)] };
            let proof = Proof {
                certificate: chain.certificates.as_slice()[at].clone(),
                parent,
                first: prior.hops.as_slice()[at].clone(),
                second: chain.hops.as_slice()[at].clone(),
            };
            proof.check(trust)?;
            let loss = entitled.hi.min(phi).saturating_sub(entitled.lo.max(plo));
            return Ok(Decision::Conflict(Box::new(Conflict {
                proof,
                tip: entitled.tip,
                loss: Amount::from_tiyn(loss),
            })));
        }
        if earlier.len() >= MAX_DEPOSITS_PER_LOAD {
            return Err(OfflineError::TooManyDeposits(earlier.len()));
        }
        let amount = Amount::from_tiyn(entitled.amount());
        Ok(Decision::Settle { tip: entitled.tip, amount, to: entitled.owner })
    }

    /// Applies a decision [`DepositBook::decide`] made for `chain` (also on
    /// replay of the bank's journal).
    pub fn apply(&mut self, chain: &Chain, decision: &Decision) {
        match decision {
            Decision::Settle { .. } => self.loads.entry(chain.load.id()).or_default().push(chain.clone()),
            Decision::Already { .. } => {}
            Decision::Conflict(conflict) => {
                self.revoked.insert(conflict.proof.device());
                self.conflicts.push((**conflict).clone());
            }
        }
    }

    /// Devices caught paying twice.
    pub fn revoked(&self) -> &BTreeSet<PublicKey> {
        &self.revoked
    }

    /// Double spends detected, oldest first.
    pub fn conflicts(&self) -> &[Conflict] {
        &self.conflicts
    }

    /// Tiyn settled from the reserve for one load.
    pub fn settled(&self, load: &Digest) -> u64 {
        self.loads.get(load).map_or(0, |chains| {
            chains.iter().map(|c| c.range()).map(|(lo, hi)| hi.saturating_sub(lo)).fold(0u64, u64::saturating_add)
        })
    }
}
