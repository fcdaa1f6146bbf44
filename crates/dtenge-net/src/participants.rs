//! The directory: who is who on the platform.
//!
//! Maps a [`ParticipantId`] to its EDS public key, its [`Role`] and, for the
//! network transport, its endpoint. Built once from configuration and then
//! only read (share it as `Arc<Participants>`); a receiver trusts a message
//! only if its sender is listed here and the signature verifies against the
//! key listed here.
//!
//! Invariants: every id appears at most once ([`Participants::new`] keeps the
//! last entry for a repeated id, [`Participants::try_new`] refuses it);
//! iteration order is the configuration order.

use std::collections::HashMap;

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::PublicKey;
use dtenge_types::ParticipantId;
use serde::{Deserialize, Serialize};

/// What a participant is on the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub enum Role {
    /// The National Bank: issuer, Tier I.
    Nbk,
    /// A second-tier (commercial) bank.
    Stb,
    /// The Treasury Committee.
    Treasury,
    /// The notary: single use of tokens.
    Notary,
    /// The oracle: events, contracts, e-invoices, attestations.
    Oracle,
    /// The directory of participants and accounts.
    Directory,
    /// An event provider: the tax service, subsidy systems, the smart-contract portal.
    Provider,
    /// A counterparty central bank (cross-border PvP): runs a node and issues
    /// its own currency; none of NBK's regulator powers. Appended last: roles
    /// are borsh-encoded in registries and evidence.
    CounterpartyCentralBank,
}

impl Role {
    /// Whether participants of this kind run a participant node (host DAs).
    pub fn is_node(self) -> bool {
        crate::authz::NODES.contains(&self)
    }
}

/// One participant's entry in the directory.
#[derive(Clone, Debug, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct ParticipantInfo {
    /// The id messages name.
    pub id: ParticipantId,
    /// A human-readable name ("Halyk Bank").
    pub name: String,
    /// What the participant is.
    pub role: Role,
    /// Its EDS key: every message from it must verify against this key.
    pub public_key: PublicKey,
    /// Where its node listens (`"127.0.0.1:7101"`, or a full `http://` URL);
    /// `None` for participants reachable only in-process or not at all.
    pub endpoint: Option<String>,
}

/// Why a directory could not be built by [`Participants::try_new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The same id is listed twice.
    #[error("participant {0} is listed twice")]
    Duplicate(ParticipantId),
    /// A listed key is not a usable Ed25519 key.
    #[error("participant {0} has an invalid or weak public key")]
    BadKey(ParticipantId),
}

/// The directory: participant id → [`ParticipantInfo`]. Immutable once built.
#[derive(Clone, Debug, Default)]
pub struct Participants {
    list: Vec<ParticipantInfo>,
    index: HashMap<ParticipantId, usize>,
}

impl Participants {
    /// Builds the directory. A repeated id replaces the earlier entry in place.
    pub fn new(list: Vec<ParticipantInfo>) -> Self {
        let mut directory = Participants::default();
        for info in list {
            match directory.index.get(&info.id) {
                Some(&at) => directory.list[at] = info,
                None => {
                    directory.index.insert(info.id.clone(), directory.list.len());
                    directory.list.push(info);
                }
            }
        }
        directory
    }

    /// Builds the directory, refusing repeated ids and unusable keys.
    pub fn try_new(list: Vec<ParticipantInfo>) -> Result<Self, DirectoryError> {
        let mut seen = std::collections::HashSet::new();
        for info in &list {
            if !seen.insert(&info.id) {
                return Err(DirectoryError::Duplicate(info.id.clone()));
            }
            if info.public_key.check().is_err() {
                return Err(DirectoryError::BadKey(info.id.clone()));
            }
        }
        Ok(Participants::new(list))
    }

    /// The entry for `id`.
    pub fn get(&self, id: &ParticipantId) -> Option<&ParticipantInfo> {
        self.index.get(id).map(|&at| &self.list[at])
    }

    /// Every entry, in configuration order.
    pub fn all(&self) -> impl Iterator<Item = &ParticipantInfo> {
        self.list.iter()
    }

    /// The entries with `role`, in configuration order.
    pub fn with_role(&self, role: Role) -> Vec<&ParticipantInfo> {
        self.list.iter().filter(|info| info.role == role).collect()
    }

    /// How many participants are listed.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the directory is empty.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use dtenge_crypto::SecretKey;

    use super::*;

    fn info(id: &str, role: Role, seed: u8) -> ParticipantInfo {
        ParticipantInfo {
            id: ParticipantId::new(id).unwrap(),
            name: id.to_lowercase(),
            role,
            public_key: SecretKey::from_seed([seed; 32]).public_key(),
            endpoint: None,
        }
    }

    #[test]
    fn lookup_by_id_and_role_keeps_configuration_order() {
        let directory =
            Participants::new(vec![info("NBK", Role::Nbk, 1), info("STB2", Role::Stb, 2), info("STB1", Role::Stb, 3)]);
        assert_eq!(directory.get(&ParticipantId::new("NBK").unwrap()).unwrap().role, Role::Nbk);
        assert!(directory.get(&ParticipantId::new("ORACLE").unwrap()).is_none());
        let banks: Vec<_> = directory.with_role(Role::Stb).iter().map(|i| i.id.to_string()).collect();
        assert_eq!(banks, ["STB2", "STB1"]);
        assert_eq!(directory.all().count(), 3);
    }

    #[test]
    fn repeated_id_replaces_in_new_and_is_refused_in_try_new() {
        let list = vec![info("NBK", Role::Nbk, 1), info("NBK", Role::Nbk, 2)];
        let directory = Participants::new(list.clone());
        assert_eq!(directory.len(), 1);
        assert_eq!(directory.all().next().unwrap().public_key, SecretKey::from_seed([2; 32]).public_key());
        assert_eq!(
            Participants::try_new(list).unwrap_err(),
            DirectoryError::Duplicate(ParticipantId::new("NBK").unwrap())
        );
    }

    #[test]
    fn weak_key_is_refused_in_try_new() {
        let mut weak = info("NBK", Role::Nbk, 1);
        weak.public_key = PublicKey([0; 32]);
        assert!(matches!(Participants::try_new(vec![weak]), Err(DirectoryError::BadKey(_))));
    }
}
