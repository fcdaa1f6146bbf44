//! Digital accounts (DA) as a participant node keeps them: who holds each one
//! (IIN/BIN, name, individual / legal entity / government agency), its KYC
//! state, its address (the public key that owns its tokens) and who holds the
//! key (the node, by default, or the client itself).

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::SecretKey;
use dtenge_types::{Address, IinBin, IinBinKind, ParticipantId, Timestamp};
use serde::{Deserialize, Serialize};

/// A DA's id on its node: `<node>-<number>`, e.g. `STB1-000042`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct AccountId(pub String);

impl AccountId {
    /// The id of the `number`th account opened on `node`.
    pub fn new(node: &ParticipantId, number: u64) -> AccountId {
        AccountId(format!("{node}-{number:06}"))
    }
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What kind of holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolderKind {
    /// A person (IIN).
    Individual,
    /// A company (BIN).
    LegalEntity,
    /// A government agency or its subordinate entity (Treasury node).
    GovernmentAgency,
    /// The node operator's own account (a bank's or NBK's DA).
    Institution,
}

impl HolderKind {
    /// The number a holder of this kind is identified by: a person by an
    /// IIN, every organisation (company, government agency, the node's own
    /// institution) by a BIN.
    pub fn identified_by(self) -> IinBinKind {
        match self {
            HolderKind::Individual => IinBinKind::Individual,
            HolderKind::LegalEntity | HolderKind::GovernmentAgency | HolderKind::Institution => IinBinKind::LegalEntity,
        }
    }
}

/// Who holds a DA.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Holder {
    /// IIN or BIN.
    pub iin_bin: IinBin,
    /// Name as identified.
    pub name: String,
    /// Kind.
    pub kind: HolderKind,
}

impl Holder {
    /// A name of 1-200 characters, and an IIN for a person or a BIN for an
    /// organisation (the fifth digit tells them apart); the error says which
    /// is wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err("holder name must be 1-200 characters".into());
        }
        let expected = self.kind.identified_by();
        if self.iin_bin.kind() != expected {
            let (wanted, got) = match expected {
                IinBinKind::Individual => ("an IIN", "a BIN (fifth digit 4-6)"),
                IinBinKind::LegalEntity => ("a BIN", "an IIN (fifth digit 0-3)"),
            };
            return Err(format!(
                "{} is {got}, but a holder of kind {:?} is identified by {wanted}",
                self.iin_bin, self.kind
            ));
        }
        Ok(())
    }
}

/// Identification state (SPEC §1: DAs open after KYC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KycState {
    /// Submitted, not yet decided: the DA can receive but not pay.
    Pending,
    /// Identified: the DA can pay and receive.
    Verified,
    /// Refused: the DA can do nothing.
    Rejected,
}

/// Who holds the DA's signing key.
#[derive(Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Custody {
    /// The node holds it and signs for the client (the default).
    Custodial(Box<SecretKey>),
    /// The client holds it and signs transactions itself.
    Client,
}

impl std::fmt::Debug for Custody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Custody::Custodial(_) => f.write_str("Custodial"),
            Custody::Client => f.write_str("Client"),
        }
    }
}

/// One DA.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Account {
    /// Its id on this node.
    pub id: AccountId,
    /// Who holds it.
    pub holder: Holder,
    /// The address that owns its tokens.
    pub address: Address,
    /// Who holds the key.
    pub custody: Custody,
    /// Identification state.
    pub kyc: KycState,
    /// When it was opened.
    pub opened_at: Timestamp,
    /// Whether it is closed.
    pub closed: bool,
}

impl Account {
    /// The custodial key, if the node holds it.
    pub fn key(&self) -> Option<&SecretKey> {
        match &self.custody {
            Custody::Custodial(k) => Some(k),
            Custody::Client => None,
        }
    }
}
