//! Proof of reserves of a DT-backed stablecoin (SPEC §9): the oracle signs
//! a stablecoin's supply and reserve as the platform read them at one
//! instant, so anyone holding the oracle's key (the participant registry)
//! can check the figures came through the oracle unchanged. The oracle does
//! not recount them: the kernel is what keeps reserve = supply (every mint
//! and burn moves both by the same amount), the figures show it.

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::{Hasher, PublicKey, Signature, Signer, Verifier};
use dtenge_types::{Amount, Currency, Timestamp};
use serde::{Deserialize, Serialize};

/// A stablecoin's figures, as read from every node's vault.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReservesReport {
    /// The stablecoin.
    pub stablecoin: Currency,
    /// Everything held of it, all holders on all nodes.
    pub supply: Amount,
    /// DT in its reserve.
    pub reserve: Amount,
}

/// A report the oracle signed at `at`.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReservesAttestation {
    /// The figures.
    pub report: ReservesReport,
    /// When the oracle signed them.
    pub at: Timestamp,
    /// The oracle's key.
    pub oracle: PublicKey,
    /// Its signature over [`ReservesAttestation::signing_message`].
    pub signature: Signature,
}

impl ReservesAttestation {
    /// The bytes the oracle signs: a domain tag, the report and the time.
    pub fn signing_message(report: &ReservesReport, at: Timestamp) -> [u8; 32] {
        let mut hasher = Hasher::new(b"dtenge/reserves/v1");
        hasher.update(&borsh::to_vec(report).unwrap_or_default());
        hasher.update(&at.millis().to_le_bytes());
        *hasher.finish().as_bytes()
    }

    /// `report` signed by `oracle` at `at`.
    pub fn sign(oracle: &dyn Signer, report: ReservesReport, at: Timestamp) -> ReservesAttestation {
        let signature = oracle.sign(&Self::signing_message(&report, at));
        ReservesAttestation { report, at, oracle: oracle.public_key(), signature }
    }

    /// Whether the signature is the oracle's over these figures and time.
    pub fn verify(&self, verifier: &dyn Verifier) -> bool {
        let message = Self::signing_message(&self.report, self.at);
        verifier.verify(&self.oracle, &message, &self.signature).is_ok()
    }
}
