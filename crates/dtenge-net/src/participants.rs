//! The directory: who is who on the platform.
//!
//! Maps a [`ParticipantId`] to its EDS public key, its [`Role`], its TLS key
//! and, for the network transport, its endpoint; and lists the keys that were
//! revoked. A receiver trusts a message only if its sender is listed here and
//! the signature verifies against the key listed here.
//!
//! The directory is shared as `Arc<Participants>` by every service of a
//! process and can be replaced while they run ([`Participants::replace`]):
//! that is how a signed registry update — a bank joins, a key is rotated or
//! revoked, an endpoint moves — reaches running services without a restart.
//! Readers get `Arc` snapshots of entries, never a lock held across an await.
//!
//! Invariants: every id appears at most once ([`Participants::new`] keeps the
//! last entry for a repeated id, [`Participants::try_new`] and
//! [`Participants::replace`] refuse it); iteration order is the
//! configuration order; a replacement never goes back to an older serial.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

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
    /// A licensed stablecoin issuer (SPEC §9): runs a node hosting its DA,
    /// mints and burns its own DT-backed stablecoin against its reserve;
    /// no bank's or regulator's powers.
    StablecoinIssuer,
}

impl Role {
    /// Whether participants of this kind run a participant node (host DAs).
    pub fn is_node(self) -> bool {
        crate::authz::NODES.contains(&self)
    }
}

/// One participant's entry in the directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct ParticipantInfo {
    /// The id messages name.
    pub id: ParticipantId,
    /// A human-readable name ("Halyk Bank").
    pub name: String,
    /// What the participant is.
    pub role: Role,
    /// Its EDS key: every message from it must verify against this key.
    pub public_key: PublicKey,
    /// Where its node listens (`"127.0.0.1:7101"`, or a full URL);
    /// `None` for participants reachable only in-process or not at all.
    pub endpoint: Option<String>,
    /// Its TLS key (Ed25519), pinned: when set, its endpoint speaks only
    /// mutually authenticated TLS and presents a certificate for this key, and
    /// it connects to others with it. `None`: plain HTTP (one machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PublicKey>,
}

/// A key the registry withdrew: messages signed with it are refused with
/// [`NetError::RevokedKey`](crate::NetError::RevokedKey), naming this entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct RevokedKey {
    /// Whose key it was.
    pub participant: ParticipantId,
    /// The key.
    pub key: PublicKey,
    /// The registry serial that revoked it.
    pub serial: u64,
    /// Why: "rotated", "compromised", "left the platform"….
    pub reason: String,
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
    /// A listed (EDS or TLS) key is also listed as revoked.
    #[error("participant {0} is listed with a key that is also revoked")]
    RevokedInUse(ParticipantId),
    /// A replacement older than what the directory holds.
    #[error("registry serial {offered} is not newer than the current {current}")]
    Older {
        /// The offered serial.
        offered: u64,
        /// The current serial.
        current: u64,
    },
}

/// One version of the directory.
#[derive(Debug, Default)]
struct Snapshot {
    serial: u64,
    list: Vec<Arc<ParticipantInfo>>,
    index: HashMap<ParticipantId, usize>,
    revoked: Vec<RevokedKey>,
}

impl Snapshot {
    fn build(list: Vec<ParticipantInfo>, revoked: Vec<RevokedKey>, serial: u64) -> Snapshot {
        let mut snapshot = Snapshot { serial, revoked, ..Snapshot::default() };
        for info in list {
            match snapshot.index.get(&info.id) {
                Some(&at) => snapshot.list[at] = Arc::new(info),
                None => {
                    snapshot.index.insert(info.id.clone(), snapshot.list.len());
                    snapshot.list.push(Arc::new(info));
                }
            }
        }
        snapshot
    }
}

fn check(list: &[ParticipantInfo], revoked: &[RevokedKey]) -> Result<(), DirectoryError> {
    let mut seen = std::collections::HashSet::new();
    for info in list {
        if !seen.insert(&info.id) {
            return Err(DirectoryError::Duplicate(info.id.clone()));
        }
        if info.public_key.check().is_err() || info.tls_key.is_some_and(|k| k.check().is_err()) {
            return Err(DirectoryError::BadKey(info.id.clone()));
        }
        if revoked.iter().any(|r| r.key == info.public_key || Some(r.key) == info.tls_key) {
            return Err(DirectoryError::RevokedInUse(info.id.clone()));
        }
    }
    Ok(())
}

/// The directory: participant id → [`ParticipantInfo`], plus revoked keys.
/// Replaceable as a whole while shared (see the module docs).
#[derive(Debug, Default)]
pub struct Participants {
    current: RwLock<Arc<Snapshot>>,
}

impl Clone for Participants {
    /// An independent directory holding the same entries.
    fn clone(&self) -> Self {
        Participants { current: RwLock::new(self.snapshot()) }
    }
}

impl Participants {
    /// Builds the directory. A repeated id replaces the earlier entry in place.
    pub fn new(list: Vec<ParticipantInfo>) -> Self {
        Participants { current: RwLock::new(Arc::new(Snapshot::build(list, Vec::new(), 0))) }
    }

    /// Builds the directory, refusing repeated ids and unusable keys.
    pub fn try_new(list: Vec<ParticipantInfo>) -> Result<Self, DirectoryError> {
        check(&list, &[])?;
        Ok(Participants::new(list))
    }

    /// A directory at registry `serial`, with revoked keys; checked like [`Participants::try_new`].
    pub fn with_revoked(
        list: Vec<ParticipantInfo>,
        revoked: Vec<RevokedKey>,
        serial: u64,
    ) -> Result<Self, DirectoryError> {
        check(&list, &revoked)?;
        Ok(Participants { current: RwLock::new(Arc::new(Snapshot::build(list, revoked, serial))) })
    }

    /// Replaces every entry and the revoked keys at once, for registry
    /// `serial`, which must be newer than the current one. Every service
    /// sharing this directory sees the new entries from its next lookup.
    pub fn replace(
        &self,
        list: Vec<ParticipantInfo>,
        revoked: Vec<RevokedKey>,
        serial: u64,
    ) -> Result<(), DirectoryError> {
        check(&list, &revoked)?;
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if serial <= current.serial {
            return Err(DirectoryError::Older { offered: serial, current: current.serial });
        }
        *current = Arc::new(Snapshot::build(list, revoked, serial));
        Ok(())
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The registry serial of the current entries (0: not from a signed registry).
    pub fn serial(&self) -> u64 {
        self.snapshot().serial
    }

    /// The entry for `id`.
    pub fn get(&self, id: &ParticipantId) -> Option<Arc<ParticipantInfo>> {
        let snapshot = self.snapshot();
        snapshot.index.get(id).map(|&at| Arc::clone(&snapshot.list[at]))
    }

    /// Every entry, in configuration order.
    pub fn all(&self) -> std::vec::IntoIter<Arc<ParticipantInfo>> {
        self.snapshot().list.clone().into_iter()
    }

    /// The entries with `role`, in configuration order.
    pub fn with_role(&self, role: Role) -> Vec<Arc<ParticipantInfo>> {
        self.all().filter(|info| info.role == role).collect()
    }

    /// The participant whose registered TLS key is `key`.
    pub fn with_tls_key(&self, key: &PublicKey) -> Option<Arc<ParticipantInfo>> {
        self.all().find(|info| info.tls_key.as_ref() == Some(key))
    }

    /// The revoked keys of `id`.
    pub fn revoked_keys_of(&self, id: &ParticipantId) -> Vec<RevokedKey> {
        self.snapshot().revoked.iter().filter(|r| &r.participant == id).cloned().collect()
    }

    /// Every revoked key.
    pub fn revoked(&self) -> Vec<RevokedKey> {
        self.snapshot().revoked.clone()
    }

    /// How many participants are listed.
    pub fn len(&self) -> usize {
        self.snapshot().list.len()
    }

    /// Whether the directory is empty.
    pub fn is_empty(&self) -> bool {
        self.snapshot().list.is_empty()
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
            tls_key: None,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod replace_tests {
    use dtenge_crypto::SecretKey;

    use super::*;

    fn info(id: &str, seed: u8) -> ParticipantInfo {
        ParticipantInfo {
            id: ParticipantId::new(id).unwrap(),
            name: id.into(),
            role: Role::Stb,
            public_key: SecretKey::from_seed([seed; 32]).public_key(),
            endpoint: None,
            tls_key: None,
        }
    }

    #[test]
    fn replacement_is_seen_through_every_shared_handle_and_never_goes_back() {
        let shared = Arc::new(Participants::with_revoked(vec![info("STB1", 1)], vec![], 1).unwrap());
        let other_service = Arc::clone(&shared);
        let revoked = RevokedKey {
            participant: ParticipantId::new("STB1").unwrap(),
            key: SecretKey::from_seed([1; 32]).public_key(),
            serial: 2,
            reason: "rotated".into(),
        };
        shared.replace(vec![info("STB1", 9), info("STB4", 4)], vec![revoked.clone()], 2).unwrap();
        assert_eq!(other_service.len(), 2);
        assert_eq!(
            other_service.get(&ParticipantId::new("STB1").unwrap()).unwrap().public_key,
            info("STB1", 9).public_key
        );
        assert_eq!(other_service.revoked_keys_of(&ParticipantId::new("STB1").unwrap()), vec![revoked]);
        assert_eq!(
            shared.replace(vec![info("STB1", 1)], vec![], 2),
            Err(DirectoryError::Older { offered: 2, current: 2 })
        );
        assert_eq!(other_service.serial(), 2);
    }

    #[test]
    fn a_key_cannot_be_listed_and_revoked_at_once() {
        let revoked = RevokedKey {
            participant: ParticipantId::new("STB1").unwrap(),
            key: info("STB1", 1).public_key,
            serial: 2,
            reason: "rotated".into(),
        };
        assert!(matches!(
            Participants::with_revoked(vec![info("STB1", 1)], vec![revoked], 2),
            Err(DirectoryError::RevokedInUse(_))
        ));
    }
}
