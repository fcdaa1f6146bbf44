//! The directory of digital accounts (SPEC §5: which node hosts which DA).
//! Participants themselves (ids, keys, endpoints) are platform configuration
//! ([`dtenge_net::Participants`]); this service maps DA addresses and IIN/BINs
//! to the node that hosts them. A node registers only its own DAs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_net::{Handler, HandlerError, Participants};
use dtenge_store::versioned::kinds;
use dtenge_store::{Format, FormatError, Journal, Recovery, StoreError};
use dtenge_types::{Address, IinBin, ParticipantId};
use serde::{Deserialize, Serialize};

use crate::accounts::{AccountId, HolderKind};

/// The directory's journal records (one [`DaEntry`] each). Format 0
/// (release 9e7a3dd) wrote them untagged; format 1 tags them.
pub const RECORD: Format = Format { kind: kinds::DIRECTORY_RECORD, version: 1, name: "directory record" };
/// The directory's snapshots (every entry), tagged from format 1.
pub const SNAPSHOT: Format = Format { kind: kinds::DIRECTORY_SNAPSHOT, version: 1, name: "directory snapshot" };

/// One DA as the directory knows it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct DaEntry {
    /// Its address.
    pub address: Address,
    /// The hosting node.
    pub host: ParticipantId,
    /// Its id on that node.
    pub account: AccountId,
    /// The holder's IIN/BIN.
    pub iin_bin: IinBin,
    /// The holder's name.
    pub name: String,
    /// The holder's kind.
    pub kind: HolderKind,
}

/// Directory requests.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum DirectoryRequest {
    /// A node registers one of its DAs.
    Register(DaEntry),
    /// Who hosts this address.
    Lookup(Address),
    /// DAs of a holder.
    FindByIin(IinBin),
}

impl dtenge_net::authz::Authorized for DirectoryRequest {
    fn operation(&self) -> dtenge_net::authz::Operation {
        use dtenge_net::authz::Operation;
        match self {
            DirectoryRequest::Register(_) => Operation::DirectoryRegister,
            DirectoryRequest::Lookup(_) => Operation::DirectoryLookup,
            DirectoryRequest::FindByIin(_) => Operation::DirectoryFind,
        }
    }
}

/// Directory answers.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum DirectoryAnswer {
    /// Registered.
    Done,
    /// The entry, if known.
    Entry(Option<DaEntry>),
    /// Entries.
    Entries(Vec<DaEntry>),
    /// Refused: what and why.
    Refused(DirectoryRefusal),
}

impl dtenge_net::Request for DirectoryRequest {
    type Answer = DirectoryAnswer;
    const SERVICE: &'static str = "directory";
}

/// Why the directory refused a registration.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, thiserror::Error)]
pub enum DirectoryRefusal {
    /// A node registers only DAs it hosts itself.
    #[error("{from} may register only DAs it hosts itself")]
    NotTheHost {
        /// Who asked.
        from: ParticipantId,
    },
    /// The address is another node's: an address belongs to one DA platform-wide.
    #[error("address {address} is already registered at {host}")]
    AddressTaken {
        /// The address.
        address: Address,
        /// Its host.
        host: ParticipantId,
    },
    /// The directory's storage failed; retry later.
    #[error("directory storage: {0}")]
    Storage(String),
}

impl DirectoryRefusal {
    /// The refusal's stable code.
    pub fn code(&self) -> &'static str {
        match self {
            DirectoryRefusal::NotTheHost { .. } => "not_the_host",
            DirectoryRefusal::AddressTaken { .. } => "address_taken",
            DirectoryRefusal::Storage(_) => "storage",
        }
    }
}

/// The running directory.
pub struct DirectoryService {
    participants: Arc<Participants>,
    journal: Journal,
    entries: Mutex<BTreeMap<Address, DaEntry>>,
}

impl DirectoryService {
    /// Recovers from its journal.
    pub fn recover(
        participants: Arc<Participants>,
        journal: Journal,
        recovery: Recovery,
    ) -> Result<Arc<Self>, StoreError> {
        let mut entries = BTreeMap::new();
        let damaged = |what: String, e: FormatError| StoreError::Corrupt {
            file: std::path::PathBuf::from("directory journal"),
            offset: 0,
            reason: format!("{what}: {e}"),
        };
        if let Some((seq, bytes)) = &recovery.snapshot {
            let list: Vec<DaEntry> = SNAPSHOT
                .decode(bytes, dtenge_store::RECORD_BYTES_MAX)
                .map_err(|e| damaged(format!("snapshot {seq}"), e))?;
            entries.extend(list.into_iter().map(|e| (e.address, e)));
        }
        for (seq, bytes) in &recovery.records {
            let entry: DaEntry = RECORD
                .decode(bytes, dtenge_store::RECORD_BYTES_MAX)
                .map_err(|e| damaged(format!("record {seq}"), e))?;
            entries.insert(entry.address, entry);
        }
        Ok(Arc::new(DirectoryService { participants, journal, entries: Mutex::new(entries) }))
    }

    fn entries(&self) -> MutexGuard<'_, BTreeMap<Address, DaEntry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn register(&self, from: &ParticipantId, entry: DaEntry) -> Result<(), DirectoryRefusal> {
        if entry.host != *from {
            return Err(DirectoryRefusal::NotTheHost { from: from.clone() });
        }
        let pending = {
            let mut entries = self.entries();
            match entries.get(&entry.address) {
                Some(existing) if existing == &entry => None,
                // An address belongs to one DA platform-wide: another node's
                // address is never taken over. Its own host may correct the
                // entry (an opening registered, then lost in a crash before
                // the node journaled it, is opened again).
                Some(existing) if existing.host != entry.host => {
                    return Err(DirectoryRefusal::AddressTaken { address: entry.address, host: existing.host.clone() });
                }
                Some(_) | None => {
                    let bytes = RECORD.encode(&entry);
                    let pending = self.journal.append(bytes).map_err(|e| DirectoryRefusal::Storage(e.to_string()))?;
                    entries.insert(entry.address, entry);
                    Some(pending)
                }
            }
        };
        if let Some(p) = pending {
            p.durable().await.map_err(|e| DirectoryRefusal::Storage(e.to_string()))?;
        }
        Ok(())
    }

    /// Who hosts `address`.
    pub fn lookup(&self, address: &Address) -> Option<DaEntry> {
        self.entries().get(address).cloned()
    }
}

#[async_trait::async_trait]
impl Handler for DirectoryService {
    async fn handle(&self, from: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        let request: DirectoryRequest = dtenge_net::decode_request(&body)?;
        dtenge_net::authz::admit(&self.participants, from, &request)?;
        let answer = match request {
            DirectoryRequest::Register(entry) => match self.register(from, entry).await {
                Ok(()) => DirectoryAnswer::Done,
                Err(e) => DirectoryAnswer::Refused(e),
            },
            DirectoryRequest::Lookup(address) => DirectoryAnswer::Entry(self.lookup(&address)),
            DirectoryRequest::FindByIin(iin) => {
                DirectoryAnswer::Entries(self.entries().values().filter(|e| e.iin_bin == iin).cloned().collect())
            }
        };
        Ok(borsh::to_vec(&answer).unwrap_or_default())
    }
}
